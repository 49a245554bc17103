"""facetwin.audio: loading, features, text to speech, singing, alignment, visemes and the training corpus."""

from facetwin.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    "Phone:timeline Timeline:timeline load_audio:io save_wav:io resample:io AudioError:io extract_features:features "
    "StreamingFeatures:streaming_features synthesize:tts languages:tts list_songs:songs align_file:align "
    "transcript_timeline:transcript LipTrack:lip_track phoneme_to_viseme:visemes build_corpus:corpus "
    "read_manifest:corpus load_item:corpus",
)
