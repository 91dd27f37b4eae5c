"""Builders that assemble a network and load its verified weights (torchvision's `weights=` idea).

Each builder takes a manifest name or a file path and nothing else; core.hub.weights does the finding
and verifying, so a tampered or missing file fails here with one clear line. What is cached is the
verified CPU state dict (hashed once per file per process), never a module: every call returns a new
network, so moving, training or wrapping one instance never reaches another.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

import torch

from ..errors import BrushstreamError
from ..hub import weights as weight_store
from .vgg16 import VGG16Features
from .vgg16_encoder import VGG16Encoder
from .vgg_decoder import VGGDecoder
from .vgg_normalised import NormalisedVGGEncoder

ENCODER_WEIGHTS = "vgg19_normalised_r31_encoder"
DECODER_WEIGHTS = {
    "relu5_1": "vgg16_r51_decoder",
    "relu4_1": "vgg16_r41_decoder",
    "relu3_1": "vgg19_normalised_r31_decoder",
    "relu2_1": "vgg19_normalised_r21_decoder",
    "relu1_1": "vgg19_normalised_r11_decoder",
}
VGG16_WEIGHTS = "vgg16_imagenet_caffe"
VGG16_DOWNLOAD = "the VGG16 ImageNet weights (vgg16_imagenet_caffe, 59 MB, not bundled)"   # for `brushstream methods`
# The light levels use the bundled normalised VGG19 (2.2 MB); the deep ones the VGG16 ImageNet backbone.
VGG16_LEVELS = ("relu4_1", "relu5_1")


@functools.lru_cache(maxsize=16)
def _read(path: str, size: int, mtime_ns: int) -> Mapping[str, torch.Tensor]:
    tensors, _ = weight_store.load_state_dict(path)
    return MappingProxyType(tensors)


def verified_state_dict(source: str) -> Mapping[str, torch.Tensor]:
    """The tensors of a verified weights file, read once per file state and shared read-only.

    ``load_state_dict`` copies them into each new module's own parameters, so nothing live is shared.
    The key includes size and mtime, so a file replaced on disk (a retrained decoder) is read again.
    """
    path = weight_store.resolve(source)
    st = path.stat()
    return _read(str(path), st.st_size, st.st_mtime_ns)


def load_verified(module: torch.nn.Module, source: str) -> torch.nn.Module:
    """Copy the verified weights of ``source`` into ``module`` (frozen, eval mode) and return it."""
    tensors = verified_state_dict(str(source))
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    wrong = sorted(k for k in expected if k in tensors and tensors[k].shape != expected[k].shape)
    if missing or wrong:
        raise BrushstreamError(
            f"{source}: does not fit {type(module).__name__} (missing {missing[:3]}, wrong shape {wrong[:3]})")
    module.load_state_dict({k: tensors[k] for k in expected})
    return module.eval().requires_grad_(False)


def normalised_vgg_encoder(weights: str = ENCODER_WEIGHTS, depth: str = "relu3_1") -> NormalisedVGGEncoder:
    """A new frozen normalised VGG19 encoder built to ``depth`` (the bundled file reaches relu3_1; a converted
    pytorch-AdaIN or LST release file reaches relu4_1 or relu5_1; a deeper file serves a shallower encoder)."""
    return load_verified(NormalisedVGGEncoder(depth), weights)


def encoder_network(source: str, level: str) -> torch.nn.Module:
    """The encoder a file holds, for features at ``level``: a distilled student (arch ``student_encoder``) or the
    normalised VGG19 built to ``level`` (the bundled file, or a converted release file: arch ``vgg19n_encoder``)."""
    arch = weight_store.read_metadata(weight_store.resolve(source)).get("arch")
    if arch == "student_encoder":
        return trained_network(source, "student_encoder")[0]
    if arch not in (None, "vgg19n_encoder"):
        raise BrushstreamError(f"{source}: holds a {arch} network, not an encoder")
    return normalised_vgg_encoder(source, level)


def network_family(encoder: torch.nn.Module) -> str:
    """The VGG whose features an encoder gives ("vgg16" or "vgg19n"; a student gives its teacher's)."""
    if isinstance(encoder, NormalisedVGGEncoder):
        return "vgg19n"
    return getattr(encoder, "teacher", "vgg16")


def check_pair(encoder: torch.nn.Module, decoder: VGGDecoder, source: str) -> None:
    """A decoder deeper than relu3_1 inverts one family's features only (vgg_decoder.py): refuse another's."""
    if decoder.level in VGG16_LEVELS and network_family(encoder) != decoder.family:
        raise BrushstreamError(f"{source}: decodes {decoder.family} features at {decoder.level}, but the encoder gives "
                               f"{network_family(encoder)} ones; pass the encoder it was trained with (--encoder)")


def vgg16_encoder(depth: str = "relu4_1", weights: str = VGG16_WEIGHTS) -> VGG16Encoder:
    """A new frozen VGG16 ImageNet encoder to ``depth`` taking RGB 0..1 (the Caffe convention is its first layer)."""
    return load_verified(VGG16Encoder(depth), weights)


def encoder_family(level: str) -> str:
    """Which encoder produces ``level``: "vgg16" for relu4_1/relu5_1, "vgg19n" for the bundled light levels."""
    if level in VGG16_LEVELS:
        return "vgg16"
    if level in DECODER_WEIGHTS:
        return "vgg19n"
    raise BrushstreamError(f"no encoder level {level!r}; levels: {', '.join(DECODER_WEIGHTS)}")


def level_encoders(levels: tuple[str, ...], vgg19n_weights: str = ENCODER_WEIGHTS,
                   vgg16_weights: str = VGG16_WEIGHTS) -> dict[str, torch.nn.Module]:
    """One new frozen encoder per family the ``levels`` need, each built only as deep as its deepest level."""
    families = {encoder_family(lv) for lv in levels}
    out: dict[str, torch.nn.Module] = {}
    if "vgg19n" in families:
        out["vgg19n"] = normalised_vgg_encoder(vgg19n_weights)
    if "vgg16" in families:
        out["vgg16"] = vgg16_encoder("relu5_1" if "relu5_1" in levels else "relu4_1", vgg16_weights)
    return out


def vgg_decoder(level: str = "relu3_1", weights: str | None = None) -> VGGDecoder:
    """A new frozen decoder for ``level`` (manifest default or an explicit file, whose metadata may give a width)."""
    if level not in DECODER_WEIGHTS:
        raise BrushstreamError(f"no decoder for {level!r}; levels: {', '.join(DECODER_WEIGHTS)}")
    source = str(weights or DECODER_WEIGHTS[level])
    meta = weight_store.read_metadata(weight_store.resolve(source))
    if meta.get("level", level) != level:
        raise BrushstreamError(f"{source}: decodes {meta['level']}, not {level}")
    return load_verified(VGGDecoder(level, float(meta.get("width", 1.0)), meta.get("family", "vgg16")), source)


def decoder_level(source: str, default: str) -> str:
    """The level a decoder file says it inverts (its ``level`` metadata), else ``default``."""
    return weight_store.read_metadata(weight_store.resolve(source)).get("level", default)


def decoder_input_encoder(source: str) -> str | None:
    """The encoder a decoder was trained to read (its ``input_encoder`` metadata: a distilled student, or the release
    encoder a converted decoder pairs with; a manifest name, or a file name found beside the decoder, so the two
    travel as a pair), or None when the decoder reads the level's own encoder."""
    meta = weight_store.read_metadata(weight_store.resolve(source))
    if not meta.get("input_encoder"):
        return None
    role = "encoder" if "imported_format" in meta else "student encoder"
    return paired_file(source, meta["input_encoder"], role, "encoder")


def paired_file(source: str, name: str, role: str, option: str) -> str:
    """``name``, a file another file says it pairs with, as a source to load: a manifest name as it is, else a file
    beside ``source`` as the user gave it (a foreign .pth is read from the conversion cache, so beside the original,
    not the cache), by that name or its stem converted (.safetensors) or original (.pth), else the path itself."""
    if name in weight_store.load_manifest():
        return name
    folder = Path(os.fspath(source)).parent if weight_store.looks_like_path(str(source)) \
        else weight_store.resolve(source).parent
    stem = Path(name).stem
    tried = [folder / candidate for candidate in dict.fromkeys((name, f"{stem}.safetensors", f"{stem}.pth"))]
    found = next((str(path) for path in tried if path.is_file()), None)
    if found is None and Path(name).is_file():   # a path as the file wrote it (a decoder given by path when training)
        found = name
    if found is None:
        raise BrushstreamError(f"{source}: was trained with the {role} {name}, which is not beside it (looked for "
                               f"{', '.join(map(str, tried))}); pass --{option}")
    return found


def vgg16_features(weights: str = VGG16_WEIGHTS) -> VGG16Features:
    """A new frozen VGG16 ImageNet convolution base, Caffe convention handled inside (see vgg16.py)."""
    return load_verified(VGG16Features(), weights)


# Settings that files written before they became options were trained with (MSG-Net's first files: raw Gram).
LEGACY_CONFIG = {"msgnet": {"statistic": "gram", "init": "paper"}, "student_encoder": {"centred": False}}


def trained_network(source: str, arch: str, builder: Callable[..., torch.nn.Module] | None = None
                    ) -> tuple[torch.nn.Module, dict[str, str], dict[str, torch.Tensor]]:
    """A network trained by core/train, rebuilt from its own file: (module, metadata, extra tensors).

    The file's metadata names the architecture and its configuration, so no caller repeats them; a file of
    another architecture is refused in one line. Tensors stored in float16 are cast back to float32; tensors
    that are not the module's (MSG-Net's learned style statistics) come back as ``extra``. ``builder`` makes an
    architecture defined outside core/nets (FlowNet, in core/flow) from the file's configuration.
    """
    import json

    from ..runtime import GRAPH_ARCH, GraphNet
    from .johnson import TransformNet
    from .lst import LinearTransform
    from .metanet import MetaNet
    from .msgnet import MSGNet
    from .msgnet_reference import MSGNetReference
    from .reconet import ReCoNet
    from .student_encoder import StudentEncoder

    builders = {"johnson_transform": TransformNet, "msgnet": MSGNet, "metanet": MetaNet,
                "lst_transform": LinearTransform, "reconet": ReCoNet, "student_encoder": StudentEncoder,
                GRAPH_ARCH: GraphNet}   # an imported ONNX graph run as-is (core/foreign/onnx_zoo.py)
    builders["msgnet_reference"] = MSGNetReference   # the MSG-Net release, converted (core/foreign)
    if builder is not None:
        builders[arch] = builder
    path = weight_store.resolve(source)
    tensors = verified_state_dict(str(path))
    meta = weight_store.read_metadata(path)
    if meta.get("arch") != arch:
        raise BrushstreamError(f"{source}: holds a {meta.get('arch') or 'unknown'} network, not {arch}")
    try:
        config = json.loads(meta["config"])
        config.pop("arch", None)
        config = {**LEGACY_CONFIG.get(arch, {}), **config}
        module = builders[arch](**config)
    except (KeyError, TypeError, ValueError) as exc:
        raise BrushstreamError(f"{source}: its metadata does not describe a {arch} network ({exc})") from None
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    wrong = sorted(k for k in own if k in tensors and tensors[k].shape != own[k].shape)
    if missing or wrong:
        raise BrushstreamError(f"{source}: does not fit its own configuration (missing {missing[:3]}, "
                               f"wrong shape {wrong[:3]})")
    module.load_state_dict({k: tensors[k].float() for k in own})
    extra = {k: v.float() for k, v in tensors.items() if k not in own}
    return module.eval().requires_grad_(False), meta, extra
