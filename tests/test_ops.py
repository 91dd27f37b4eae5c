"""The maths of core/ops on synthetic tensors: exact properties, no weights needed."""
import torch

from brushstream.core.ops.adain import adain
from brushstream.core.ops.colour import preserve_colour, rgb_to_yiq
from brushstream.core.ops.patch_swap import style_swap
from brushstream.core.ops.resize import crop_to, pad_to_multiple, resize_long_side
from brushstream.core.ops.stats import gram, mean_std
from brushstream.core.ops.wct import colouring_stats, whiten_colour


def _feat(c=16, h=12, w=10, seed=0, scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, c, h, w, generator=g) * scale + shift


def test_adain_output_carries_style_mean_and_std():
    content, style = _feat(seed=1), _feat(seed=2, scale=3.0, shift=5.0)
    s_mean, s_std = mean_std(style)
    out_mean, out_std = mean_std(adain(content, s_mean, s_std))
    torch.testing.assert_close(out_mean, s_mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_std, s_std, atol=1e-3, rtol=1e-3)


def test_masked_mean_std_ignores_the_masked_out_region():
    feat = _feat()
    mask = torch.zeros(1, 1, 12, 10)
    mask[..., :6, :] = 1
    m, s = mean_std(feat, mask=mask)
    ref_m, ref_s = mean_std(feat[..., :6, :])
    torch.testing.assert_close(m, ref_m, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s, ref_s, atol=1e-5, rtol=1e-5)


def test_gram_is_size_independent():
    tile = _feat(h=4, w=4)
    torch.testing.assert_close(gram(tile), gram(tile.repeat(1, 1, 3, 3)), atol=1e-5, rtol=1e-5)


def test_wct_matches_style_mean_and_covariance():
    content = _feat(c=8, h=20, w=20, seed=3)
    mixing = torch.randn(8, 8, generator=torch.Generator().manual_seed(4))
    style = torch.einsum("ij,bjhw->bihw", mixing, _feat(c=8, h=24, w=24, seed=5)) + 2.0
    stats = colouring_stats(style, floor=1e-10)
    out = whiten_colour(content, stats, floor=1e-10)
    f = out[0].reshape(8, -1).double()
    mean = f.mean(1, keepdim=True)
    cov = (f - mean) @ (f - mean).T / (f.shape[1] - 1)
    torch.testing.assert_close(mean, stats.mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(cov, stats.cov, atol=1e-3, rtol=1e-3)


def test_wct_is_finite_on_flat_and_rank_deficient_features():
    flat = torch.ones(1, 8, 10, 10)
    rank1 = torch.arange(8.0).view(1, 8, 1, 1) * torch.rand(1, 1, 10, 10)
    out = whiten_colour(flat, colouring_stats(rank1))
    assert torch.isfinite(out).all()
    out = whiten_colour(_feat(c=8), colouring_stats(flat))
    assert torch.isfinite(out).all()


def test_style_swap_of_an_image_with_itself_is_identity():
    feat = _feat(c=8, h=9, w=11).relu()
    torch.testing.assert_close(style_swap(feat, feat, 3, chunk=5), feat, atol=1e-5, rtol=1e-5)


def test_style_swap_output_is_made_of_style_patches_and_chunking_changes_nothing():
    content, style = _feat(c=4, h=8, w=8, seed=6).relu(), _feat(c=4, h=10, w=10, seed=7).relu()
    out = style_swap(content, style, 1, chunk=7)
    torch.testing.assert_close(out, style_swap(content, style, 1, chunk=100000))
    torch.testing.assert_close(style_swap(content, style, 3, chunk=9), style_swap(content, style, 3, chunk=100000))
    # 1x1 patches: every output vector is one of the style vectors
    style_vecs = style[0].reshape(4, -1).T
    for v in out[0].reshape(4, -1).T:
        assert (style_vecs - v).abs().sum(1).min() < 1e-5


def test_style_swap_matches_a_direct_all_patches_reference():
    content, style = _feat(c=3, h=7, w=6, seed=8).relu(), _feat(c=3, h=6, w=8, seed=9).relu()
    k = 3
    cp = torch.nn.functional.unfold(content, k)[0].T          # (L, C*k*k)
    sp = torch.nn.functional.unfold(style, k)[0].T            # (N, C*k*k)
    best = (cp @ (sp / sp.norm(dim=1, keepdim=True)).T).argmax(dim=1)
    summed = torch.nn.functional.fold(sp[best].T.unsqueeze(0), content.shape[-2:], k)
    counts = torch.nn.functional.fold(torch.ones_like(sp[best].T).unsqueeze(0), content.shape[-2:], k)
    torch.testing.assert_close(style_swap(content, style, k, chunk=4), summed / counts, atol=1e-5, rtol=1e-5)


def test_preserve_colour_keeps_content_chrominance():
    # mid-range values so the final clamp to [0, 1] does not come into play
    content = torch.rand(1, 3, 16, 16) * 0.2 + 0.4
    stylized = torch.rand(1, 3, 16, 16) * 0.2 + 0.4
    out = preserve_colour(stylized, content)
    torch.testing.assert_close(rgb_to_yiq(out)[:, 1:], rgb_to_yiq(content)[:, 1:], atol=1e-4, rtol=1e-4)


def test_pad_and_crop_round_trip_and_resize_keeps_aspect():
    x = torch.rand(1, 3, 17, 30)
    padded, size = pad_to_multiple(x, 4)
    assert padded.shape[-2:] == (20, 32)
    assert torch.equal(crop_to(padded, size), x)
    assert resize_long_side(torch.rand(1, 3, 300, 451), 384).shape[-2:] == (255, 384)


def test_adain_folded_into_the_next_convolution_equals_embedding_adain_and_convolution():
    """The fast path's rewrite (ops/adain_fold.py): embedding -> AdaIN (with strength, per-image statistics, a style
    shared by the batch or one per image) -> reflection pad -> 3x3 convolution, as one convolution over the student's
    own channels. Exact, border included."""
    import torch.nn.functional as F

    from brushstream.core.methods.base import blend_strength
    from brushstream.core.ops.adain_fold import embedded_stats, folded_first_conv
    torch.manual_seed(0)
    native = torch.relu(torch.randn(2, 6, 9, 11)) + torch.rand(2, 6, 1, 1)   # per-image statistics differ
    embed, conv, unit = torch.nn.Conv2d(6, 16, 1), torch.nn.Conv2d(16, 5, 3), 0.7
    embedded = unit * embed(native)
    torch.testing.assert_close(torch.cat([s.flatten(1) for s in mean_std(embedded)]),
                               torch.cat(embedded_stats(native, embed.weight[:, :, 0, 0], embed.bias, unit)),
                               atol=1e-5, rtol=1e-5)
    for style in (_feat(seed=3, scale=2.0, shift=1.0), torch.cat([_feat(seed=4), _feat(seed=5, scale=0.3)])):
        s_mean, s_std = mean_std(style)
        for strength in (1.0, 0.4):
            with torch.no_grad():
                t = blend_strength(adain(embedded, s_mean, s_std), embedded, strength)
                reference = conv(F.pad(t, (1, 1, 1, 1), mode="reflect"))
                folded = folded_first_conv(native, embed, unit, conv, s_mean, s_std, strength)
            torch.testing.assert_close(folded, reference, atol=1e-4, rtol=1e-4)


def test_palette_matching_gives_the_style_chrominance_mean_and_covariance_and_keeps_luminance():
    """--palette (ops/colour.py): at 1 the image takes the palette's I/Q mean and covariance and keeps its luminance (an
    image whose matched colours stay inside [0, 1], so the clamp is idle); at 0 it is unchanged; two styles blend as
    one mixture of their pixels."""
    from brushstream.core.ops.colour import match_palette, palette_stats
    g = torch.Generator().manual_seed(0)
    image = 0.5 + 0.05 * torch.randn(2, 3, 20, 24, generator=g)
    style = (torch.tensor([0.6, 0.4, 0.3]).view(1, 3, 1, 1)
             + 0.04 * torch.einsum("ij,bjhw->bihw", torch.randn(3, 3, generator=g), torch.randn(1, 3, 30, 30, generator=g)))
    palette = palette_stats([style], (1.0,))
    out = match_palette(image, palette, 1.0)
    assert 0 < out.min() and out.max() < 1
    torch.testing.assert_close(rgb_to_yiq(out)[:, 0], rgb_to_yiq(image)[:, 0], atol=1e-5, rtol=0)
    for x in out.split(1):
        chroma = rgb_to_yiq(x)[0, 1:].reshape(2, -1).double()
        torch.testing.assert_close(chroma.mean(1, keepdim=True), palette.mean, atol=1e-5, rtol=0)
        torch.testing.assert_close(torch.cov(chroma), palette.cov, atol=1e-6, rtol=1e-3)
    torch.testing.assert_close(match_palette(image, palette, 0.0), image.clamp(0, 1))
    other = torch.rand(1, 3, 30, 30, generator=g)
    both = palette_stats([style, other], (0.5, 0.5))
    pooled = rgb_to_yiq(torch.cat([style, other], dim=-1))[0, 1:].reshape(2, -1).double()
    torch.testing.assert_close(both.mean, pooled.mean(1, keepdim=True))
    torch.testing.assert_close(both.cov, torch.cov(pooled), atol=1e-5, rtol=1e-2)


def test_total_variation_in_both_forms():
    """A vertical ramp rising 0.1 a row: L1 mean 0.1 (Gatys' form), squared 0.01 (Johnson's training form)."""
    from brushstream.core.ops.total_variation import total_variation
    ramp = (torch.arange(6.0) * 0.1)[:, None].expand(6, 5)[None, None]
    assert torch.isclose(total_variation(ramp), torch.tensor(0.1))
    assert torch.isclose(total_variation(ramp, squared=True), torch.tensor(0.01))
