"""No light bands along the edges: the outer pixels of a decoder method's output match what the same networks make
of them inside the picture (the photo reflect-padded, stylized, cropped back), within a measured tolerance."""
import pytest
import torch
import torch.nn.functional as F

from brushstream.core.io.image import load_image
from brushstream.core.methods import build
from brushstream.core.ops.resize import resize_long_side

from .conftest import SHARED_DATA

BAND = 6


def stylize_with(model, code, x, context):
    model.context, saved = 0, model.context
    try:
        y = model.stylize(F.pad(x, (context,) * 4, mode="reflect") if context else x, code)
    finally:
        model.context = saved
    return y[..., context:-context, context:-context] if context else y


def border_and_interior(y, reference, k=BAND):
    mag = (y - reference)[0].abs().mean(0)
    border = torch.cat([mag[:k].flatten(), mag[-k:].flatten(), mag[:, :k].flatten(), mag[:, -k:].flatten()])
    return float(border.mean()), float(mag[2 * k:-2 * k, 2 * k:-2 * k].mean())


@pytest.mark.parametrize("method, options", [("adain", {"level": "relu4_1"}), ("adain", {"level": "fast"}),
                                             ("adain", {}), ("lst", {})])
def test_the_border_matches_the_picture_in_context(method, options):
    model = build(method, **options)
    style = resize_long_side(load_image(SHARED_DATA / "styles" / "candy.jpg").image, 256)
    code = model.encode_style([style])
    x = resize_long_side(load_image(SHARED_DATA / "content_eval" / "hays80_balcony_interior.jpg").image, 384)
    reference = stylize_with(model, code, x, 96)
    border, interior = border_and_interior(model.stylize(x, code), reference)
    bare, bare_interior = border_and_interior(stylize_with(model, code, x, 0), reference)
    # The interior differs a little from the reference too (the padded picture's statistics differ); a band is
    # the border departing further than that.
    assert bare > 1.8 * bare_interior, (bare, bare_interior)          # without context: a band
    assert border < 1.6 * interior and border < 0.35 * bare, (border, interior, bare)
