"""facetwin.audio: loading, features, text to speech, singing, alignment, visemes and the training corpus."""

from facetwin.lazy import lazy_exports

_NAMES = {
    "Phone": "timeline",
    "Timeline": "timeline",
    "load_audio": "io",
    "save_wav": "io",
    "resample": "io",
    "AudioError": "io",
    "extract_features": "features",
    "StreamingFeatures": "features",
    "synthesize": "tts",
    "languages": "tts",
    "list_songs": "sing",
    "align_file": "align",
    "transcript_timeline": "transcript",
    "LipTrack": "lip_track",
    "phoneme_to_viseme": "visemes",
    "build_corpus": "corpus",
    "read_manifest": "corpus",
    "load_item": "corpus",
}
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
__all__ = sorted(_NAMES)
