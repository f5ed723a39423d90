"""The Triton kernel of the fused warps (imported only when triton is installed; see :mod:`.triton_warp`).

One kernel serves both operations: each program samples a block of output pixels of one ``(batch, grid)``
pair for a block of channels. Sampling positions, bilinear weights and the occlusion factor are computed in
float32 whatever the storage dtype; each source value is read where a tap needs it, never copied per grid.
"""

from __future__ import annotations

from typing import Any

import triton
import triton.language as tl

__all__ = ["make_warp_kernel"]


def make_warp_kernel() -> Any:
    """A freshly jitted kernel: ``triton.jit`` picks the interpreter (``TRITON_INTERPRET=1``) when decorating,
    so the caller keeps one per mode."""

    # Sizes are not specialised (a size of 1 would become a compile-time constant: one compile per shape).
    @triton.jit(do_not_specialize=["channels", "height", "width", "out_h", "out_w", "num_grids"])
    def warp_kernel(
        image,
        grid,
        occlusion,
        out,
        channels,
        height,
        width,
        out_h,
        out_w,
        num_grids,
        s_ib,
        s_ic,
        s_ih,
        s_iw,
        s_gb,
        s_gn,
        s_gh,
        s_gw,
        s_gc,
        s_mb,
        s_mh,
        s_mw,
        s_ob,
        s_on,
        s_oc,
        s_oh,
        s_ow,
        ALIGN_CORNERS: tl.constexpr,  # noqa: N803
        BORDER: tl.constexpr,  # noqa: N803
        HAS_OCCLUSION: tl.constexpr,  # noqa: N803
        BLOCK_P: tl.constexpr,  # noqa: N803
        BLOCK_C: tl.constexpr,  # noqa: N803 (Triton's capitals for compile-time constants)
    ):
        pid_p = tl.program_id(0)
        pid_bn = tl.program_id(1)
        pid_c = tl.program_id(2)
        b = pid_bn // num_grids
        n = pid_bn % num_grids

        p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
        p_mask = p < out_h * out_w
        y = p // out_w
        x = p % out_w

        g_ptr = grid + b * s_gb + n * s_gn + y * s_gh + x * s_gw
        gx = tl.load(g_ptr, mask=p_mask, other=0.0).to(tl.float32)
        gy = tl.load(g_ptr + s_gc, mask=p_mask, other=0.0).to(tl.float32)
        w_f = tl.cast(width, tl.float32)
        h_f = tl.cast(height, tl.float32)
        if ALIGN_CORNERS:
            ix = (gx + 1.0) / 2.0 * (w_f - 1.0)
            iy = (gy + 1.0) / 2.0 * (h_f - 1.0)
        else:
            ix = ((gx + 1.0) * w_f - 1.0) / 2.0
            iy = ((gy + 1.0) * h_f - 1.0) / 2.0
        if BORDER:
            ix = tl.minimum(tl.maximum(ix, 0.0), w_f - 1.0)
            iy = tl.minimum(tl.maximum(iy, 0.0), h_f - 1.0)
        else:
            # Far outside, every tap is padding: clamping keeps that and keeps the integer cast in range.
            ix = tl.minimum(tl.maximum(ix, -2.0), w_f + 1.0)
            iy = tl.minimum(tl.maximum(iy, -2.0), h_f + 1.0)
        x0f = tl.floor(ix)
        y0f = tl.floor(iy)
        # grid_sample's weights: nw = (x1 - ix)(y1 - iy), ne = (ix - x0)(y1 - iy), sw = (x1 - ix)(iy - y0), ...
        wx1 = ix - x0f
        wx0 = (x0f + 1.0) - ix
        wy1 = iy - y0f
        wy0 = (y0f + 1.0) - iy
        x0 = x0f.to(tl.int32)
        y0 = y0f.to(tl.int32)
        x1 = x0 + 1
        y1 = y0 + 1
        in_x0 = (x0 >= 0) & (x0 < width)
        in_x1 = (x1 >= 0) & (x1 < width)
        in_y0 = (y0 >= 0) & (y0 < height)
        in_y1 = (y1 >= 0) & (y1 < height)

        c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
        c_mask = c < channels
        mask = p_mask[:, None] & c_mask[None, :]
        base = image + b * s_ib + c[None, :] * s_ic
        row0 = y0[:, None] * s_ih
        row1 = y1[:, None] * s_ih
        col0 = x0[:, None] * s_iw
        col1 = x1[:, None] * s_iw
        v_nw = tl.load(base + row0 + col0, mask=mask & (in_y0 & in_x0)[:, None], other=0.0).to(tl.float32)
        v_ne = tl.load(base + row0 + col1, mask=mask & (in_y0 & in_x1)[:, None], other=0.0).to(tl.float32)
        v_sw = tl.load(base + row1 + col0, mask=mask & (in_y1 & in_x0)[:, None], other=0.0).to(tl.float32)
        v_se = tl.load(base + row1 + col1, mask=mask & (in_y1 & in_x1)[:, None], other=0.0).to(tl.float32)
        acc = v_nw * (wx0 * wy0)[:, None]
        acc += v_ne * (wx1 * wy0)[:, None]
        acc += v_sw * (wx0 * wy1)[:, None]
        acc += v_se * (wx1 * wy1)[:, None]
        if HAS_OCCLUSION:
            occ = tl.load(occlusion + b * s_mb + y * s_mh + x * s_mw, mask=p_mask, other=0.0).to(tl.float32)
            acc = acc * occ[:, None]
        o_ptr = out + b * s_ob + n * s_on + c[None, :] * s_oc + y[:, None] * s_oh + x[:, None] * s_ow
        tl.store(o_ptr, acc.to(out.dtype.element_ty), mask=mask)

    return warp_kernel
