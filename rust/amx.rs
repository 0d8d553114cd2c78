//! bf16 products on AMX tiles, where the CPU and the OS offer them (Xeon since
//! Sapphire Rapids). One `tdpbf16ps` sums a 16×32 by 32×16 bf16 product into a 16×16
//! float32 tile: 8,192 products, where one AVX-512 `vdpbf16ps` does 32. It reads the
//! same bf16 pairs as the AVX512_BF16 kernel (`gemm::Packed`'s weight pairs, each row of
//! states as pairs), so both round alike and only the order of the float32 sums differs.
//!
//! Rust has no stable AMX intrinsics, so the few instructions are inline assembly.
//! Linux gives a process the tile registers only after `arch_prctl(ARCH_REQ_XCOMP_PERM)`;
//! each call loads the tile shapes and releases the tiles when it returns.

use std::sync::OnceLock;

/// Rows of states (and of sums) in one tile.
pub const TILE_ROWS: usize = 16;
/// bf16 pairs along the depth of one tile (32 values, 64 bytes a row).
pub const TILE_PAIRS: usize = 16;
/// Columns of one weight panel (`gemm::Packed` on AVX-512): four tiles of 16 sums.
const PANEL: usize = 64;

/// Whether this process runs bf16 products on AMX tiles; `NAMELANG_AMX=0` turns them
/// off (the tests compare both kernels, and it is a way out should a machine misbehave).
pub fn available() -> bool {
    static AMX: OnceLock<bool> = OnceLock::new();
    *AMX.get_or_init(|| std::env::var("NAMELANG_AMX").as_deref() != Ok("0") && detect())
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    // CPUID leaf 7: EDX bit 24 is AMX-TILE, bit 22 AMX-BF16.
    #[allow(unused_unsafe)] // safe in newer Rust, unsafe in older
    let edx = unsafe { std::arch::x86_64::__cpuid_count(7, 0) }.edx;
    (edx >> 24) & 1 == 1 && (edx >> 22) & 1 == 1 && request_tile_data()
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// Asks Linux for the tile data state; false where the kernel predates AMX or refuses.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_data() -> bool {
    const SYS_ARCH_PRCTL: isize = 158;
    const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
    const XFEATURE_XTILEDATA: usize = 18;
    let ret: isize;
    // SAFETY: arch_prctl with these arguments only changes this process's permission.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

/// out[r][j] = start[r][j] + Σ states · weights for r < rows and j < 64 · panels, where
/// each row starts from `same` (one row for all, as a bias: the tiles load it with
/// stride 0, no copy) or else from what `out` holds, `a16` holds the rows' states as
/// bf16 pairs (`kpairs` a row, a multiple of TILE_PAIRS; from 16 rows on, room for
/// whole tiles of rows, the rows past `rows` read and their sums dropped), and `pairs`
/// the weights as `Packed` lays them out (panels of 64 columns, `kpairs` rows each).
///
/// # Safety
/// `available()` must hold; the slices must be as described (asserted).
#[allow(clippy::too_many_arguments)] // the product's operands and where sums start
pub unsafe fn matmul(
    rows: usize,
    same: Option<&[f32]>,
    a16: &[u32],
    kpairs: usize,
    pairs: &[u32],
    panels: usize,
    out: &mut [f32],
    ldo: usize,
) {
    assert!(kpairs.is_multiple_of(TILE_PAIRS) && a16.len() >= padded_rows(rows) * kpairs);
    assert!(pairs.len() >= panels * kpairs * PANEL && ldo >= panels * PANEL);
    assert!(rows == 0 || out.len() >= (rows - 1) * ldo + panels * PANEL);
    assert!(same.is_none_or(|row| row.len() >= panels * PANEL));
    if rows == 0 {
        return; // a tile of no rows is not a shape `ldtilecfg` takes
    }
    // Fewer than 16 rows (one name, say) run in tiles of that many rows: a tile costs
    // what its rows do. From 16 on, a short last block runs as a whole tile through a
    // buffer, under the same panel as the others while its weights are in L1. A row's
    // sums are the same bits either way (`a_row_sums_alike_in_any_tile`).
    tiles::configure(rows.min(TILE_ROWS));
    let mut tail = [0f32; TILE_ROWS * PANEL];
    for panel in 0..panels {
        let w = pairs.as_ptr().add(panel * kpairs * PANEL);
        for r0 in (0..rows).step_by(TILE_ROWS) {
            let n = TILE_ROWS.min(rows - r0);
            let (a, at) = (a16.as_ptr().add(r0 * kpairs), r0 * ldo + panel * PANEL);
            let from_row = |row: &[f32]| (row.as_ptr().add(panel * PANEL), 0);
            if n == rows.min(TILE_ROWS) {
                let c = out.as_mut_ptr().add(at);
                let from = same.map_or((c.cast_const(), ldo), from_row);
                tiles::block(from, (c, ldo), a, kpairs, w);
                continue;
            }
            for r in 0..n {
                let src = match same {
                    Some(row) => &row[panel * PANEL..(panel + 1) * PANEL],
                    None => &out[at + r * ldo..at + r * ldo + PANEL],
                };
                tail[r * PANEL..(r + 1) * PANEL].copy_from_slice(src);
            }
            let c = tail.as_mut_ptr();
            tiles::block((c.cast_const(), PANEL), (c, PANEL), a, kpairs, w);
            for r in 0..n {
                out[at + r * ldo..at + r * ldo + PANEL]
                    .copy_from_slice(&tail[r * PANEL..(r + 1) * PANEL]);
            }
        }
    }
    tiles::release();
}

/// The rows of states `matmul` reads for `rows` rows: whole tiles from 16 rows on.
pub fn padded_rows(rows: usize) -> usize {
    if rows < TILE_ROWS {
        rows
    } else {
        rows.div_ceil(TILE_ROWS) * TILE_ROWS
    }
}

#[cfg(target_arch = "x86_64")]
mod tiles {
    use super::{PANEL, TILE_PAIRS};
    use std::arch::asm;

    /// The tile configuration `ldtilecfg` reads (palette 1).
    #[repr(C, align(64))]
    struct Config {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    /// Eight tiles of 64 bytes a row: tmm0-3 the sums of 64 columns and tmm4 the states,
    /// `rows` rows each; tmm5-7 the weights, 16 rows of pairs.
    pub(super) unsafe fn configure(rows: usize) {
        let mut config = Config {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            bytes_per_row: [0; 16],
            rows: [0; 16],
        };
        for t in 0..8 {
            config.bytes_per_row[t] = 64;
            config.rows[t] = if t < 5 { rows } else { TILE_PAIRS } as u8;
        }
        asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly));
    }

    pub(super) unsafe fn release() {
        asm!("tilerelease", options(nostack, nomem));
    }

    /// to[n][64] = from[n][64] + a[n][depth] · w[depth][64], n the configured rows (each
    /// pointer with its row stride in floats; 0 reads one row for all), depth in chunks
    /// of 32: a's rows `kpairs` pairs apart, w's pair rows 64 pairs apart.
    pub(super) unsafe fn block(
        (from, ldf): (*const f32, usize),
        (to, ldt): (*mut f32, usize),
        a: *const u32,
        kpairs: usize,
        w: *const u32,
    ) {
        let (as_, ws) = (kpairs * 4, PANEL * 4);
        asm!(
            "tileloadd tmm0, [{c} + {s}*1]",
            "tileloadd tmm1, [{c} + {s}*1 + 64]",
            "tileloadd tmm2, [{c} + {s}*1 + 128]",
            "tileloadd tmm3, [{c} + {s}*1 + 192]",
            c = in(reg) from, s = in(reg) ldf * 4, options(nostack, readonly),
        );
        for chunk in 0..kpairs / TILE_PAIRS {
            let (ak, wk) = (a.add(chunk * TILE_PAIRS), w.add(chunk * TILE_PAIRS * PANEL));
            asm!(
                "tileloadd tmm4, [{a} + {as_}*1]",
                "tileloadd tmm5, [{w} + {ws}*1]",
                "tdpbf16ps tmm0, tmm4, tmm5",
                "tileloadd tmm6, [{w} + {ws}*1 + 64]",
                "tdpbf16ps tmm1, tmm4, tmm6",
                "tileloadd tmm7, [{w} + {ws}*1 + 128]",
                "tdpbf16ps tmm2, tmm4, tmm7",
                "tileloadd tmm5, [{w} + {ws}*1 + 192]",
                "tdpbf16ps tmm3, tmm4, tmm5",
                a = in(reg) ak, as_ = in(reg) as_, w = in(reg) wk, ws = in(reg) ws,
                options(nostack, readonly),
            );
        }
        asm!(
            "tilestored [{c} + {s}*1], tmm0",
            "tilestored [{c} + {s}*1 + 64], tmm1",
            "tilestored [{c} + {s}*1 + 128], tmm2",
            "tilestored [{c} + {s}*1 + 192], tmm3",
            c = in(reg) to, s = in(reg) ldt * 4, options(nostack),
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tiles {
    pub(super) unsafe fn configure(_: usize) {
        unreachable!("AMX tiles are x86-64 only")
    }
    pub(super) unsafe fn release() {}
    pub(super) unsafe fn block(
        _: (*const f32, usize),
        _: (*mut f32, usize),
        _: *const u32,
        _: usize,
        _: *const u32,
    ) {
    }
}
