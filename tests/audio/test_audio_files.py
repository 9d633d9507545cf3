"""Audio files: FLAC/MP3/Opus round trips of a sine, ComfyUI's metadata and names, LoadAudio's hostile inputs."""

from __future__ import annotations

import math
import os
import wave
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hearth_audio.audio_value import resample
from hearth_audio.nodes_audio_io import NODES

from hearth.core.context import Folders


@pytest.fixture
def folders(hearth_folders: Folders) -> Folders:
    return hearth_folders


def call(name: str, **inputs):
    cls = NODES[name]
    return getattr(cls(), cls.FUNCTION)(**inputs)


def sine(rate: int = 22050, seconds: float = 0.5, channels: int = 2, batch: int = 1) -> dict:
    """A sine per channel (440 Hz, 660 Hz) at amplitude 0.5, on the 16-bit grid so FLAC can store it exactly."""
    t = torch.arange(int(rate * seconds)) / rate
    waves = [0.5 * torch.sin(2 * math.pi * (440 + 220 * c) * t) for c in range(channels)]
    waveform = torch.round(torch.stack(waves) * 32768) / 32768
    return {"waveform": waveform.expand(batch, -1, -1).clone(), "sample_rate": rate}


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float((a * b).sum() / (a.norm() * b.norm()))


def saved(result: dict, folders: Folders, kind: str = "output") -> list[Path]:
    return [folders.for_type(kind) / e["subfolder"] / e["filename"] for e in result["ui"]["audio"]]


def test_flac_round_trip_is_bit_exact_at_16_bit_with_the_workflow_in_its_tags(folders):
    audio = sine(batch=2)
    result = call("SaveAudio", audio=audio, filename_prefix="audio/take_%batch_num%",
                  prompt={"1": {"class_type": "EmptyAudio"}}, extra_pnginfo={"workflow": {"nodes": []}})
    paths = saved(result, folders)
    assert [p.name for p in paths] == ["take_0_00001_.flac", "take_1_00002_.flac"]  # one counter per clip
    assert result["ui"]["audio"][0] == {"filename": "take_0_00001_.flac", "subfolder": "audio", "type": "output"}
    loaded = call("LoadAudio", audio="audio/take_0_00001_.flac [output]")[0]
    assert loaded["sample_rate"] == 22050 and loaded["waveform"].shape == (1, 2, 11025)
    assert torch.equal(loaded["waveform"][0], audio["waveform"][0])
    with av.open(str(paths[0])) as container:
        assert container.metadata["prompt"] == '{"1": {"class_type": "EmptyAudio"}}'
        assert container.metadata["workflow"] == '{"nodes": []}'
    # The next save continues the counter instead of overwriting.
    again = call("SaveAudio", audio=sine(), filename_prefix="audio/take_%batch_num%")
    assert again["ui"]["audio"][0]["filename"] == "take_0_00003_.flac"


@pytest.mark.parametrize("quality", ["V0", "128k", "320k"])
def test_mp3_round_trip_keeps_the_sine(folders, quality):
    audio = sine(rate=44100)
    (path,) = saved(call("SaveAudioMP3", audio=audio, filename_prefix="m", quality=quality), folders)
    assert path.suffix == ".mp3"
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name.startswith("mp3") and stream.codec_context.sample_rate == 44100
        if quality != "V0":  # V0 is LAME's variable bit rate
            assert stream.bit_rate == int(quality[:-1]) * 1000
    loaded = call("LoadAudio", audio=f"{path.name} [output]")[0]["waveform"][0]
    assert loaded.shape[0] == 2
    n = min(loaded.shape[-1], audio["waveform"].shape[-1])
    assert correlation(loaded[:, :n], audio["waveform"][0, :, :n]) > 0.99


def test_opus_is_resampled_to_the_next_opus_rate_and_keeps_the_sine(folders):
    audio = sine(rate=22050, channels=1)
    (path,) = saved(call("SaveAudioOpus", audio=audio, filename_prefix="o", quality="96k"), folders)
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
    loaded = call("LoadAudio", audio=f"{path.name} [output]")[0]
    # Opus decodes at 48 kHz whatever it was encoded at (24 kHz, the next Opus rate above 22050).
    assert loaded["sample_rate"] == 48000 and loaded["waveform"].shape[1] == 1
    expected = resample(audio["waveform"][0], 22050, 48000)
    n = min(loaded["waveform"].shape[-1], expected.shape[-1])
    assert correlation(loaded["waveform"][0, :, :n], expected[:, :n]) > 0.98


def test_save_audio_advanced_takes_the_dynamic_quality_and_passes_the_audio_on(folders):
    audio = sine(rate=44100, seconds=0.2)
    node = NODES["SaveAudioAdvanced"]
    assert list(node.INPUT_TYPES()["required"]) == ["audio", "filename_prefix", "format"]
    out = call("SaveAudioAdvanced", audio=audio, filename_prefix="adv/x", format="mp3", **{"format.quality": "320k"})
    assert out["result"] == (audio,) and out["ui"]["audio"][0]["filename"].endswith(".mp3")
    flac = call("SaveAudioAdvanced", audio=audio, filename_prefix="adv/x", format="flac")
    assert flac["ui"]["audio"][0]["filename"] == "x_00002_.flac"
    with pytest.raises(ValueError, match="SaveAudioAdvanced: mp3 quality '64k' is not one of V0, 128k, 320k"):
        call("SaveAudioAdvanced", audio=audio, filename_prefix="adv/x", format="mp3", **{"format.quality": "64k"})


def test_preview_audio_writes_flac_to_temp(folders):
    result = call("PreviewAudio", audio=sine(seconds=0.1))
    (entry,) = result["ui"]["audio"]
    assert entry["type"] == "temp" and entry["filename"].startswith("ComfyUI_temp_")
    assert (folders.temp / entry["filename"]).is_file()


def test_a_prefix_that_leaves_the_output_folder_is_refused(folders):
    with pytest.raises(ValueError, match="SaveAudio: .*outside the output folder"):
        call("SaveAudio", audio=sine(seconds=0.1), filename_prefix="../../escape")
    assert not list(folders.output.parent.glob("escape*"))
    leftovers = [p for p in folders.output.rglob("*") if ".partial" in p.name]
    assert leftovers == []


def test_more_than_two_channels_or_a_bad_value_is_refused_by_name(folders):
    wide = {"waveform": torch.zeros(1, 3, 100), "sample_rate": 8000}
    with pytest.raises(ValueError, match="SaveAudio: 3-channel audio cannot be saved"):
        call("SaveAudio", audio=wide, filename_prefix="w")
    with pytest.raises(ValueError, match="SaveAudioMP3: audio must be an AUDIO value"):
        call("SaveAudioMP3", audio=torch.zeros(1, 2, 10), filename_prefix="w", quality="V0")
    with pytest.raises(ValueError, match="SaveAudioOpus: Opus takes at most 256 kbit/s per channel"):
        call("SaveAudioOpus", audio=sine(seconds=0.1, channels=1), filename_prefix="w", quality="320k")
    with pytest.raises(ValueError, match="SaveAudioMP3: MP3 cannot store 7000 Hz"):
        call("SaveAudioMP3", audio={"waveform": torch.zeros(1, 1, 100), "sample_rate": 7000}, filename_prefix="w",
             quality="V0")


def test_load_audio_reads_wav_lists_audio_files_and_refuses_hostile_input(folders):
    rate = 16000
    pcm = (np.sin(np.arange(1600) * 0.05) * 20000).astype(np.int16)
    with wave.open(str(folders.input / "voice.wav"), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    (folders.input / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    (folders.input / "fake.mp3").write_bytes(b"this is not audio at all" * 10)
    (folders.input / ".upload.1234-abcd1234.partial.wav").write_bytes(b"RIFF")  # an upload still being written
    choices = NODES["LoadAudio"].INPUT_TYPES()["required"]["audio"]
    assert choices[0] == ["fake.mp3", "voice.wav"] and choices[1] == {"audio_upload": True}
    (audio,) = call("LoadAudio", audio="voice.wav")
    assert audio["sample_rate"] == rate and audio["waveform"].dtype == torch.float32
    assert torch.equal(audio["waveform"][0, 0], torch.from_numpy(pcm).float() / 32768)
    with pytest.raises(ValueError, match="LoadAudio: fake.mp3 is not an audio file"):
        call("LoadAudio", audio="fake.mp3")
    with pytest.raises(ValueError, match="LoadAudio: photo.png"):
        call("LoadAudio", audio="photo.png")
    outside = NODES["LoadAudio"].VALIDATE_INPUTS("../../etc/passwd")
    assert isinstance(outside, str) and "outside the input folder" in outside
    assert "no audio file" in NODES["LoadAudio"].VALIDATE_INPUTS("missing.wav")
    with pytest.raises(ValueError, match="RecordAudio: nothing was recorded"):
        call("RecordAudio", audio="")
    (recorded,) = call("RecordAudio", audio="voice.wav [input]")
    assert torch.equal(recorded["waveform"], audio["waveform"])
