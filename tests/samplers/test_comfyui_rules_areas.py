"""ComfyUI's matching-area rule (issue 23): an area prompt's crop is guided against the other side's prompt on the
same crop. The parity harness found an area workflow 95 levels from ComfyUI without it; these pin the rule."""

from __future__ import annotations

import torch
from hearth_samplers.regions import Region, share_areas


def region(name: str, area: tuple[int, int, int, int] | None = None, **options) -> Region:
    return Region(cond=torch.full((1, 2, 4), float(len(name))), model_options={"name": name, **options}, area=area)


def names(side: list[Region]) -> list[tuple[str, tuple[int, int, int, int] | None]]:
    return [(r.model_options["name"], r.area) for r in side]


def test_each_positive_area_gives_the_negative_its_prompt_on_that_area() -> None:
    left, right = region("left", (8, 8, 0, 0), control="ctl"), region("right", (8, 8, 0, 8))
    left.strength = 0.7
    positive, negative = [left, right], [region("neg")]
    share_areas(positive, negative)
    assert names(negative) == [("neg", None), ("neg", (8, 8, 0, 0)), ("neg", (8, 8, 0, 8))]
    copy = negative[1]
    assert torch.equal(copy.cond, negative[0].cond) and copy.strength == 0.7  # the negative's text, the area's weight
    assert copy.model_options["control"] == "ctl"  # the area entry's ControlNet comes along, as in ComfyUI
    assert names(positive) == [("left", (8, 8, 0, 0)), ("right", (8, 8, 0, 8))]  # areas already matched


def test_the_smallest_containing_area_gives_the_conditioning_and_an_equal_area_blocks_the_copy() -> None:
    positive = [region("small", (4, 4, 2, 2))]
    negative = [region("whole"), region("big", (16, 16, 0, 0)), region("mid", (8, 8, 0, 0)),
                region("elsewhere", (4, 4, 10, 10))]
    share_areas(positive, negative)
    assert names(negative)[-1] == ("mid", (4, 4, 2, 2))
    # The negative's own areas go back to the positive too: its only entry contains none of them but "small"'s
    # own area, so each takes the positive entry when inside it, else nothing.
    assert [name for name, _ in names(positive)] == ["small"]
    same = [region("a", (4, 4, 0, 0))], [region("b", (4, 4, 0, 0))]
    share_areas(*same)
    assert [len(side) for side in same] == [1, 1]


def test_no_area_anywhere_changes_nothing() -> None:
    positive, negative = [region("p")], [region("n")]
    share_areas(positive, negative)
    assert names(positive) == [("p", None)] and names(negative) == [("n", None)]
