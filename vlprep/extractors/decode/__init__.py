"""Decoding media into arrays: images here, videos next to them."""

from .errors import DecodeError as DecodeError
from .image import decode_image as decode_image
from .open import open_video as open_video
from .video import VideoMeta as VideoMeta
from .video import VideoReader as VideoReader
from .video import probe_video as probe_video
