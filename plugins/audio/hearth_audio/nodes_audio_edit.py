"""ComfyUI's audio editing nodes (comfy_extras/nodes_audio.py): trim, split and join channels, concat, merge, volume,
empty audio, and EmptyLatentAudio (Stable Audio's zero latent; model-free).

Behaviour is ComfyUI's: where two clips meet, the one at the lower sample rate is resampled to the higher
(:func:`hearth_audio.audio_value.match_sample_rates`); AudioConcat makes mono clips stereo by repeating the channel;
AudioMerge fits audio2's length to audio1's (trimmed or padded with silence) and scales the result back to a peak
of 1 when it exceeds it; JoinAudioChannels trims to the shorter clip. Differences: clips whose batch sizes differ
are refused with a message (ComfyUI fails inside torch), and EmptyAudio refuses clips over 4 GiB.
Imported when plugins load: torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

MAX_EMPTY_BYTES = 4 << 30
_HUGE = 0xFFFFFFFFFFFFFFFF


def _audio(value: Any, node: str, name: str = "audio") -> tuple[Any, int]:
    from .audio_value import audio_input

    return audio_input(value, node, name)


class TrimAudioDuration:
    DISPLAY_NAME = "Trim Audio Duration"
    CATEGORY = "audio"
    DESCRIPTION = "Trim audio tensor into chosen time range."
    RETURN_TYPES = ("AUDIO",)
    FUNCTION = "trim"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "audio": ("AUDIO",),
            "start_index": ("FLOAT", {"default": 0.0, "min": -_HUGE, "max": _HUGE, "step": 0.01,
                                      "tooltip": "Start time in seconds, can be negative to count from the end "
                                                 "(supports sub-seconds)."}),
            "duration": ("FLOAT", {"default": 60.0, "min": 0.0, "step": 0.01, "tooltip": "Duration in seconds"}),
        }}

    def trim(self, audio: Any, start_index: float, duration: float) -> tuple[dict[str, Any]]:
        waveform, rate = _audio(audio, "TrimAudioDuration")
        length = waveform.shape[-1]
        offset = int(round(start_index * rate))
        start = length + offset if start_index < 0 else offset
        start = max(0, min(start, length - 1))
        end = max(0, min(start + int(round(duration * rate)), length))
        if start >= end:
            raise ValueError(f"TrimAudioDuration: start_index {start_index} s with duration {duration} s selects no "
                             f"samples of this {length / rate:.3f} s clip; start inside it with a positive duration")
        return ({"waveform": waveform[..., start:end], "sample_rate": rate},)


class SplitAudioChannels:
    DISPLAY_NAME = "Split Audio Channels"
    CATEGORY = "audio"
    DESCRIPTION = "Separates the audio into left and right channels."
    RETURN_TYPES = ("AUDIO", "AUDIO")
    RETURN_NAMES = ("left", "right")
    FUNCTION = "separate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"audio": ("AUDIO",)}}

    def separate(self, audio: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        waveform, rate = _audio(audio, "SplitAudioChannels")
        if waveform.shape[1] != 2:
            raise ValueError(f"SplitAudioChannels: audio has {waveform.shape[1]} channel(s); it splits stereo only")
        return ({"waveform": waveform[:, 0:1], "sample_rate": rate},
                {"waveform": waveform[:, 1:2], "sample_rate": rate})


class JoinAudioChannels:
    DISPLAY_NAME = "Join Audio Channels"
    CATEGORY = "audio"
    DESCRIPTION = "Joins left and right mono audio channels into a stereo audio."
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    FUNCTION = "join"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"audio_left": ("AUDIO",), "audio_right": ("AUDIO",)}}

    def join(self, audio_left: Any, audio_right: Any) -> tuple[dict[str, Any]]:
        import torch

        from .audio_value import match_sample_rates, same_batch

        left, left_rate = _audio(audio_left, "JoinAudioChannels", "audio_left")
        right, right_rate = _audio(audio_right, "JoinAudioChannels", "audio_right")
        if left.shape[1] != 1 or right.shape[1] != 1:
            raise ValueError(f"JoinAudioChannels: both inputs must be mono; audio_left has {left.shape[1]} and "
                             f"audio_right {right.shape[1]} channel(s) (SplitAudioChannels makes mono clips)")
        same_batch("JoinAudioChannels", left, right, ("audio_left", "audio_right"))
        left, right, rate = match_sample_rates(left, left_rate, right, right_rate)
        length = min(left.shape[-1], right.shape[-1])
        return ({"waveform": torch.cat([left[..., :length], right[..., :length]], dim=1), "sample_rate": rate},)


class AudioConcat:
    DISPLAY_NAME = "Audio Concat"
    CATEGORY = "audio"
    DESCRIPTION = "Concatenates the audio1 to audio2 in the specified direction."
    RETURN_TYPES = ("AUDIO",)
    FUNCTION = "concat"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"audio1": ("AUDIO",), "audio2": ("AUDIO",),
                             "direction": (["after", "before"], {"default": "after",
                                                                 "tooltip": "Whether to append audio2 after or "
                                                                            "before audio1."})}}

    def concat(self, audio1: Any, audio2: Any, direction: str) -> tuple[dict[str, Any]]:
        import torch

        from .audio_value import match_sample_rates, same_batch

        first, first_rate = _audio(audio1, "AudioConcat", "audio1")
        second, second_rate = _audio(audio2, "AudioConcat", "audio2")
        first = first.repeat(1, 2, 1) if first.shape[1] == 1 else first
        second = second.repeat(1, 2, 1) if second.shape[1] == 1 else second
        if first.shape[1] != second.shape[1]:
            raise ValueError(f"AudioConcat: audio1 has {first.shape[1]} channels and audio2 {second.shape[1]}; "
                             f"mono and stereo clips can be joined, others must match")
        same_batch("AudioConcat", first, second, ("audio1", "audio2"))
        first, second, rate = match_sample_rates(first, first_rate, second, second_rate)
        parts = (first, second) if direction == "after" else (second, first)
        return ({"waveform": torch.cat(parts, dim=2), "sample_rate": rate},)


class AudioMerge:
    DISPLAY_NAME = "Audio Merge"
    CATEGORY = "audio"
    DESCRIPTION = "Combine two audio tracks by overlaying their waveforms."
    RETURN_TYPES = ("AUDIO",)
    FUNCTION = "merge"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"audio1": ("AUDIO",), "audio2": ("AUDIO",),
                             "merge_method": (["add", "mean", "subtract", "multiply"],
                                              {"tooltip": "The method used to combine the audio waveforms."})}}

    def merge(self, audio1: Any, audio2: Any, merge_method: str) -> tuple[dict[str, Any]]:
        import torch.nn.functional as F

        from .audio_value import match_sample_rates, same_batch

        first, first_rate = _audio(audio1, "AudioMerge", "audio1")
        second, second_rate = _audio(audio2, "AudioMerge", "audio2")
        if first.shape[1] != second.shape[1] and 1 not in (first.shape[1], second.shape[1]):
            raise ValueError(f"AudioMerge: audio1 has {first.shape[1]} channels and audio2 {second.shape[1]}; "
                             f"a mono clip mixes into any, others must match")
        same_batch("AudioMerge", first, second, ("audio1", "audio2"))
        first, second, rate = match_sample_rates(first, first_rate, second, second_rate)
        length = first.shape[-1]
        second = second[..., :length] if second.shape[-1] > length else F.pad(second, (0, length - second.shape[-1]))
        combine = {"add": lambda a, b: a + b, "subtract": lambda a, b: a - b, "multiply": lambda a, b: a * b,
                   "mean": lambda a, b: (a + b) / 2}
        if merge_method not in combine:
            raise ValueError(f"AudioMerge: merge_method {merge_method!r} is not one of {', '.join(combine)}")
        waveform = combine[merge_method](first, second)
        peak = waveform.abs().max()
        if peak > 1.0:
            waveform = waveform / peak
        return ({"waveform": waveform, "sample_rate": rate},)


class AudioAdjustVolume:
    DISPLAY_NAME = "Audio Adjust Volume"
    CATEGORY = "audio"
    RETURN_TYPES = ("AUDIO",)
    FUNCTION = "adjust_volume"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"audio": ("AUDIO",),
                             "volume": ("INT", {"default": 1, "min": -100, "max": 100,
                                                "tooltip": "Volume adjustment in decibels (dB). 0 = no change, "
                                                           "+6 = double, -6 = half, etc"})}}

    def adjust_volume(self, audio: Any, volume: int) -> tuple[dict[str, Any]]:
        waveform, rate = _audio(audio, "AudioAdjustVolume")
        if volume == 0:
            return (audio,)
        return ({"waveform": waveform * 10 ** (volume / 20), "sample_rate": rate},)


class EmptyAudio:
    DISPLAY_NAME = "Empty Audio"
    CATEGORY = "audio"
    RETURN_TYPES = ("AUDIO",)
    FUNCTION = "create_empty_audio"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "duration": ("FLOAT", {"default": 60.0, "min": 0.0, "max": _HUGE, "step": 0.01,
                                   "tooltip": "Duration of the empty audio clip in seconds"}),
            "sample_rate": ("INT", {"default": 44100, "min": 1, "max": 192000, "advanced": True,
                                    "tooltip": "Sample rate of the empty audio clip."}),
            "channels": ("INT", {"default": 2, "min": 1, "max": 2, "advanced": True,
                                 "tooltip": "Number of audio channels (1 for mono, 2 for stereo)."}),
        }}

    def create_empty_audio(self, duration: float, sample_rate: int, channels: int) -> tuple[dict[str, Any]]:
        import torch

        samples = int(round(duration * sample_rate))
        if samples * channels * 4 > MAX_EMPTY_BYTES:
            raise ValueError(f"EmptyAudio: {duration} s at {sample_rate} Hz is {samples} samples per channel, "
                             f"{samples * channels * 4 / 2**30:.1f} GiB; the most is {MAX_EMPTY_BYTES >> 30} GiB "
                             f"(about {MAX_EMPTY_BYTES // (4 * channels * sample_rate)} s here); ask for less")
        return ({"waveform": torch.zeros((1, channels, samples), dtype=torch.float32), "sample_rate": sample_rate},)


class EmptyLatentAudio:
    """Stable Audio's empty latent: 64 channels, one step per 2048 samples at 44.1 kHz, rounded to an even length."""

    DISPLAY_NAME = "Empty Latent Audio"
    CATEGORY = "latent/audio"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"seconds": ("FLOAT", {"default": 47.6, "min": 1.0, "max": 1000.0, "step": 0.1}),
                             "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096,
                                                    "tooltip": "The number of latent images in the batch."})}}

    def generate(self, seconds: float, batch_size: int) -> tuple[dict[str, Any]]:
        import torch

        length = round((seconds * 44100 / 2048) / 2) * 2
        return ({"samples": torch.zeros([batch_size, 64, length]), "type": "audio"},)


NODES = {cls.__name__: cls for cls in (TrimAudioDuration, SplitAudioChannels, JoinAudioChannels, AudioConcat,
                                       AudioMerge, AudioAdjustVolume, EmptyAudio, EmptyLatentAudio)}
