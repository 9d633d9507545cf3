"""Audio editing nodes as ComfyUI defines them, the resampler, and LoadAudio -> Trim -> SaveAudio in the executor."""

from __future__ import annotations

import json
import math

import av
import pytest
import torch
from hearth_audio.audio_value import resample
from hearth_audio.nodes_audio_edit import NODES

from hearth.core.context import Folders


def call(name: str, **inputs):
    cls = NODES[name]
    return getattr(cls(), cls.FUNCTION)(**inputs)


def tone(freq: float, rate: int, samples: int, channels: int = 1, batch: int = 1, amp: float = 0.5) -> dict:
    t = torch.arange(samples, dtype=torch.float64) / rate
    wave = (amp * torch.sin(2 * math.pi * freq * t)).float()
    return {"waveform": wave.expand(batch, channels, -1).clone(), "sample_rate": rate}


def ramp(samples: int, channels: int = 2, rate: int = 100) -> dict:
    values = torch.arange(samples, dtype=torch.float32).expand(1, channels, -1) / samples
    return {"waveform": values.clone(), "sample_rate": rate}


# -- resampling ----------------------------------------------------------------------------------------------


def test_resampling_keeps_a_tone_below_the_new_nyquist_and_removes_one_above():
    up = resample(tone(440, 22050, 2205)["waveform"], 22050, 44100)
    assert up.shape[-1] == 4410  # ceil(new * samples / orig)
    expected = tone(440, 44100, 4410)["waveform"]
    # Away from the edges (where the filter sees the zero padding) the upsampled tone is the tone.
    assert (up[..., 200:-200] - expected[..., 200:-200]).abs().max() < 2e-3
    kept = resample(tone(3000, 48000, 4800)["waveform"], 48000, 16000)
    removed = resample(tone(10000, 48000, 4800)["waveform"], 48000, 16000)  # above 8 kHz: would alias
    assert kept.shape[-1] == 1600
    assert (kept - tone(3000, 16000, 1600)["waveform"])[..., 100:-100].abs().max() < 1e-3
    assert removed[..., 100:-100].abs().max() < 0.01
    odd = resample(torch.randn(2, 3, 1001), 44100, 22050)
    assert odd.shape == (2, 3, 501)
    same = torch.randn(1, 1, 10)
    assert resample(same, 8000, 8000) is same


def direct_resample(x: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """torchaudio's definition, summed sample by sample in float64: y[j] = c * sum_i x[i] * sinc(t) * hann(t),
    t = base * (i / orig - j / new), base = 0.99 * min(orig, new), |t| <= 6 zero crossings, c = base / orig."""
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    base = 0.99 * min(orig, new)
    out = []
    for j in range(math.ceil(new * x.shape[-1] / orig)):
        t = base * (torch.arange(x.shape[-1], dtype=torch.float64) / orig - j / new)
        inside = t.abs() <= 6
        sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(math.pi * t) / (math.pi * t))
        weights = torch.where(inside, sinc * torch.cos(math.pi * t / 12) ** 2, torch.zeros_like(t)) * base / orig
        out.append((x.double() * weights).sum(-1))
    return torch.stack(out, -1)


@pytest.mark.parametrize(("orig", "new"), [(8000, 12000), (44100, 48000), (48000, 16000), (22050, 24000)])
def test_resampling_is_torchaudios_sinc_filter(orig, new):
    x = torch.randn(2, 300, generator=torch.Generator().manual_seed(orig))
    assert (resample(x, orig, new).double() - direct_resample(x, orig, new)).abs().max() < 1e-5


# -- editing -------------------------------------------------------------------------------------------------


def test_trim_counts_seconds_from_the_start_or_the_end():
    audio = ramp(1000)  # 10 s at 100 Hz
    (cut,) = call("TrimAudioDuration", audio=audio, start_index=2.5, duration=1.0)
    assert torch.equal(cut["waveform"], audio["waveform"][..., 250:350]) and cut["sample_rate"] == 100
    (tail,) = call("TrimAudioDuration", audio=audio, start_index=-1.0, duration=60.0)
    assert torch.equal(tail["waveform"], audio["waveform"][..., 900:])
    (clamped,) = call("TrimAudioDuration", audio=audio, start_index=99.0, duration=5.0)
    assert clamped["waveform"].shape[-1] == 1  # ComfyUI clamps the start to the last sample
    with pytest.raises(ValueError, match="TrimAudioDuration: start_index 1.0 s with duration 0.0 s selects no"):
        call("TrimAudioDuration", audio=audio, start_index=1.0, duration=0.0)


def test_split_and_join_channels():
    audio = ramp(50)
    audio["waveform"][:, 1] *= -1
    left, right = call("SplitAudioChannels", audio=audio)
    assert torch.equal(left["waveform"][0, 0], audio["waveform"][0, 0]) and right["waveform"].shape == (1, 1, 50)
    short = {"waveform": right["waveform"][..., :40], "sample_rate": 100}
    (joined,) = call("JoinAudioChannels", audio_left=left, audio_right=short)
    assert torch.equal(joined["waveform"], audio["waveform"][..., :40])  # trimmed to the shorter
    with pytest.raises(ValueError, match="SplitAudioChannels: audio has 1 channel"):
        call("SplitAudioChannels", audio=left)
    with pytest.raises(ValueError, match="JoinAudioChannels: both inputs must be mono"):
        call("JoinAudioChannels", audio_left=audio, audio_right=left)


def test_concat_makes_mono_stereo_and_resamples_the_lower_rate_up():
    mono = tone(300, 8000, 800)
    stereo = tone(300, 16000, 1600, channels=2)
    (after,) = call("AudioConcat", audio1=stereo, audio2=mono, direction="after")
    assert after["sample_rate"] == 16000 and after["waveform"].shape == (1, 2, 3200)
    upsampled = resample(mono["waveform"].repeat(1, 2, 1), 8000, 16000)
    assert torch.equal(after["waveform"][..., :1600], stereo["waveform"])
    assert torch.allclose(after["waveform"][..., 1600:], upsampled)
    (before,) = call("AudioConcat", audio1=stereo, audio2=mono, direction="before")
    assert torch.allclose(before["waveform"][..., :1600], upsampled)
    with pytest.raises(ValueError, match="AudioConcat: audio1 has a batch of 2 clips and audio2 of 1"):
        call("AudioConcat", audio1=tone(300, 8000, 80, batch=2), audio2=mono, direction="after")


def test_merge_fits_audio2_to_audio1_and_normalises_peaks_over_one():
    first = {"waveform": torch.full((1, 1, 6), 0.8), "sample_rate": 10}
    second = {"waveform": torch.full((1, 1, 4), 0.6), "sample_rate": 10}
    (added,) = call("AudioMerge", audio1=first, audio2=second, merge_method="add")
    # 1.4 over four samples, 0.8 where audio2 was padded with silence; the peak 1.4 is scaled back to 1.
    assert torch.allclose(added["waveform"][0, 0], torch.tensor([1, 1, 1, 1, 0.8 / 1.4, 0.8 / 1.4]))
    (mean,) = call("AudioMerge", audio1=second, audio2=first, merge_method="mean")
    assert torch.allclose(mean["waveform"], torch.full((1, 1, 4), 0.7))  # audio2 trimmed to audio1's length
    (sub,) = call("AudioMerge", audio1=first, audio2=second, merge_method="subtract")
    assert torch.allclose(sub["waveform"][0, 0, :4], torch.full((4,), 0.2))
    (mul,) = call("AudioMerge", audio1=first, audio2=second, merge_method="multiply")
    assert torch.allclose(mul["waveform"][0, 0], torch.tensor([0.48] * 4 + [0.0] * 2))
    with pytest.raises(ValueError, match="AudioMerge: audio1 has 2 channels and audio2 3"):
        call("AudioMerge", audio1={"waveform": torch.zeros(1, 2, 4), "sample_rate": 10},
             audio2={"waveform": torch.zeros(1, 3, 4), "sample_rate": 10}, merge_method="add")


def test_volume_is_in_decibels():
    audio = ramp(10)
    (louder,) = call("AudioAdjustVolume", audio=audio, volume=6)
    assert torch.allclose(louder["waveform"], audio["waveform"] * 10 ** (6 / 20))
    assert call("AudioAdjustVolume", audio=audio, volume=0)[0] is audio
    with pytest.raises(ValueError, match="AudioAdjustVolume: audio's waveform must be a float tensor"):
        call("AudioAdjustVolume", audio={"waveform": torch.zeros(10), "sample_rate": 10}, volume=3)


def test_empty_audio_and_empty_latent_audio_shapes_and_a_huge_request():
    (empty,) = call("EmptyAudio", duration=0.5, sample_rate=8000, channels=1)
    assert empty["waveform"].shape == (1, 1, 4000) and not empty["waveform"].any()
    with pytest.raises(ValueError, match="EmptyAudio: 1e\\+18 s at 44100 Hz .* ask for less"):
        call("EmptyAudio", duration=1e18, sample_rate=44100, channels=2)
    (latent,) = call("EmptyLatentAudio", seconds=47.6, batch_size=2)
    # round((47.6 * 44100 / 2048) / 2) * 2 = 1024
    assert latent["samples"].shape == (2, 64, 1024) and latent["type"] == "audio"
    schema = NODES["EmptyLatentAudio"].INPUT_TYPES()["required"]
    assert schema["seconds"][1] == {"default": 47.6, "min": 1.0, "max": 1000.0, "step": 0.1}


# -- the real executor ---------------------------------------------------------------------------------------


def test_load_trim_save_through_the_executor(hearth_folders: Folders, run_prompt):
    from hearth_audio.audio_files import encode

    source = tone(440, 16000, 16000, channels=2)
    (hearth_folders.input / "clip.flac").write_bytes(encode(source["waveform"][0], 16000, "flac"))
    prompt = {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": "clip.flac"}},
        "2": {"class_type": "TrimAudioDuration", "inputs": {"audio": ["1", 0], "start_index": 0.25, "duration": 0.5}},
        "3": {"class_type": "SaveAudio", "inputs": {"audio": ["2", 0], "filename_prefix": "audio/trimmed"}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    (entry,) = result.outputs["3"]["audio"]
    assert entry == {"filename": "trimmed_00001_.flac", "subfolder": "audio", "type": "output"}
    with av.open(str(hearth_folders.output / "audio" / entry["filename"])) as container:
        assert "prompt" in container.metadata  # the executor's prompt, written as ComfyUI writes it
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    samples = torch.cat([torch.from_numpy(f).reshape(-1, 2).t() for f in frames], dim=1).float() / 32768
    expected = torch.round(source["waveform"][0, :, 4000:12000] * 32768).clamp(-32768, 32767) / 32768
    assert samples.shape == (2, 8000) and (samples - expected).abs().max() <= 1 / 32768


def test_a_non_audio_file_fails_the_prompt_naming_node_and_file(hearth_folders: Folders, run_prompt):
    (hearth_folders.input / "notes.wav").write_text("just text")
    prompt = {"1": {"class_type": "LoadAudio", "inputs": {"audio": "notes.wav"}},
              "2": {"class_type": "PreviewAudio", "inputs": {"audio": ["1", 0]}}}
    result = run_prompt(prompt)
    assert not result.ok and "LoadAudio: notes.wav is not an audio file" in result.error["exception_message"]


def test_save_audio_advanced_in_a_prompt_takes_format_quality_and_feeds_the_next_node(hearth_folders, run_prompt):
    prompt = {
        "1": {"class_type": "EmptyAudio", "inputs": {"duration": 0.1, "sample_rate": 44100, "channels": 2}},
        "2": {"class_type": "SaveAudioAdvanced", "inputs": {"audio": ["1", 0], "filename_prefix": "audio/adv",
                                                            "format": "mp3", "format.quality": "V0"}},
        "3": {"class_type": "PreviewAudio", "inputs": {"audio": ["2", 0]}},
    }
    result = run_prompt(prompt)
    assert result.ok, result.error
    assert result.outputs["2"]["audio"][0]["filename"] == "adv_00001_.mp3"
    assert result.outputs["3"]["audio"][0]["type"] == "temp"
    prompt["2"]["inputs"]["format.quality"] = "999k"
    rejected = run_prompt(prompt)
    assert not rejected.ok and "999k" in str(rejected.validation.response() if rejected.validation else rejected.error)


def test_a_path_outside_the_input_folder_fails_validation(hearth_folders: Folders, run_prompt):
    secret = hearth_folders.input.parent / "secret.wav"
    secret.write_bytes(b"RIFF")
    prompt = {"1": {"class_type": "LoadAudio", "inputs": {"audio": "../secret.wav"}},
              "2": {"class_type": "PreviewAudio", "inputs": {"audio": ["1", 0]}}}
    result = run_prompt(prompt)
    assert not result.ok and "1" not in result.executed
    shown = json.dumps(result.validation.response() if result.validation else result.error)
    assert "outside the input folder" in shown
