//! Matching descriptors: nearest neighbour with Lowe's ratio test, optionally mutual.
//!
//! All squared distances of a band of queries to the whole set come from one matrix product
//! (‖a‖² + ‖b‖² − 2 a·b), computed in the band's own cache-sized buffer. The products and
//! the norms are summed in the order libtorch's GEMM and sum gave them on this project's
//! machines (each product a chain of fused multiply-adds over the 128 values; each norm in
//! eight lanes, see [`squared_norm`]), so matches stay what they were when libtorch computed
//! them, and are the same on every CPU and in the build without libtorch.
use super::sift::{Features, DESCRIPTOR_LEN};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    pub fixed: usize,
    pub moving: usize,
    pub distance: f32,
}

/// Rows of queries per block (the column minimum of the mutual check merges blocks in order).
const BLOCK: usize = 2048;

/// A query's nearest: (its index in the set, squared distance, squared distance of the second).
type Nearest = (usize, f32, f32);

/// Set descriptors per panel of the packed set (one AVX-512 vector of products).
const PANEL: usize = 16;

/// ‖v‖² of a descriptor, as libtorch's sum of the squares gave it with its AVX2 kernels: each
/// square rounded, summed into eight lanes by four accumulators of eight (vector m of eight
/// values into accumulator m mod 4, in order), the accumulators added in order, then the eight
/// lanes in order onto zero.
pub(crate) fn squared_norm(v: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [[0f32; LANES]; 4];
    for (m, chunk) in v.chunks_exact(LANES).enumerate() {
        for (a, &x) in acc[m % 4].iter_mut().zip(chunk) {
            *a += x * x;
        }
    }
    let mut lanes = acc[0];
    for other in &acc[1..] {
        for (l, &o) in lanes.iter_mut().zip(other) {
            *l += o;
        }
    }
    let tail: f32 = v.chunks_exact(LANES).remainder().iter().fold(0.0, |a, &x| a + x * x);
    lanes.iter().fold(tail, |a, &l| a + l)
}

/// The set's descriptors in panels of [`PANEL`]: panel p holds value k of descriptors
/// 16p..16p+16 side by side at (p·128 + k)·16 (zeros past the last descriptor).
fn pack(set: &Features) -> Vec<f32> {
    let panels = set.len().div_ceil(PANEL);
    let mut packed = vec![0f32; panels * DESCRIPTOR_LEN * PANEL];
    for (j, d) in set.descriptors.chunks_exact(DESCRIPTOR_LEN).enumerate() {
        let (p, lane) = (j / PANEL, j % PANEL);
        for (k, &v) in d.iter().enumerate() {
            packed[(p * DESCRIPTOR_LEN + k) * PANEL + lane] = v;
        }
    }
    packed
}

/// The dot products of `queries` (rows of 128) with every packed descriptor, into `out` (one
/// row of `panels`·16 per query): each a chain of fused multiply-adds over k = 0..128 from
/// zero, the same bits on every width.
fn products(queries: &[f32], packed: &[f32], out: &mut [f32]) {
    let width = packed.len() / DESCRIPTOR_LEN;
    assert!(queries.len() / DESCRIPTOR_LEN * width <= out.len() && width.is_multiple_of(PANEL));
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512 is present; the sizes are asserted above.
            return unsafe { simd::products_avx512(queries, packed, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA are present; the sizes are asserted above.
            return unsafe { simd::products_avx2(queries, packed, out) };
        }
    }
    products_plain(queries, packed, out)
}

/// [`products`] one value at a time (CPUs without AVX2, and the tests' reference).
fn products_plain(queries: &[f32], packed: &[f32], out: &mut [f32]) {
    let width = packed.len() / DESCRIPTOR_LEN;
    for (q, row) in queries.chunks_exact(DESCRIPTOR_LEN).zip(out.chunks_exact_mut(width)) {
        for (p, panel) in packed.chunks_exact(DESCRIPTOR_LEN * PANEL).enumerate() {
            let mut acc = [0f32; PANEL];
            for (&qk, values) in q.iter().zip(panel.chunks_exact(PANEL)) {
                for (a, &v) in acc.iter_mut().zip(values) {
                    *a = qk.mul_add(v, *a);
                }
            }
            row[p * PANEL..][..PANEL].copy_from_slice(&acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{DESCRIPTOR_LEN, PANEL};
    use std::arch::x86_64::*;

    const ROWS_512: usize = 8;

    /// Queries in groups of eight (eight accumulators of sixteen products), each query value
    /// broadcast into a multiply-add with the panel's sixteen values of that k.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn products_avx512(queries: &[f32], packed: &[f32], out: &mut [f32]) {
        let width = packed.len() / DESCRIPTOR_LEN;
        let n = queries.len() / DESCRIPTOR_LEN;
        let (q, o) = (queries.as_ptr(), out.as_mut_ptr());
        for r0 in (0..n).step_by(ROWS_512) {
            let (rows, group) = (ROWS_512.min(n - r0), q.add(r0 * DESCRIPTOR_LEN));
            for p in 0..width / PANEL {
                let panel = packed.as_ptr().add(p * DESCRIPTOR_LEN * PANEL);
                // The constant count lets a full group's loop unroll into eight registers.
                let acc = if rows == ROWS_512 { panel_avx512(group, panel, ROWS_512) } else { panel_avx512(group, panel, rows) };
                for (r, a) in acc.iter().enumerate().take(rows) {
                    _mm512_storeu_ps(o.add((r0 + r) * width + p * PANEL), *a);
                }
            }
        }
    }

    /// One panel's products with the first `rows` queries from `q` (rows of 128), in the
    /// order of [`super::products_plain`]. Always inlined into [`products_avx512`], whose
    /// AVX-512 it runs with, so a constant `rows` unrolls.
    #[inline(always)]
    unsafe fn panel_avx512(q: *const f32, panel: *const f32, rows: usize) -> [__m512; ROWS_512] {
        let mut acc = [_mm512_setzero_ps(); ROWS_512];
        for k in 0..DESCRIPTOR_LEN {
            let b = _mm512_loadu_ps(panel.add(k * PANEL));
            for (r, a) in acc.iter_mut().enumerate().take(rows) {
                *a = _mm512_fmadd_ps(_mm512_set1_ps(*q.add(r * DESCRIPTOR_LEN + k)), b, *a);
            }
        }
        acc
    }

    /// As [`products_avx512`] with two vectors of eight per panel and four queries a group.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn products_avx2(queries: &[f32], packed: &[f32], out: &mut [f32]) {
        const ROWS: usize = 4;
        let width = packed.len() / DESCRIPTOR_LEN;
        let n = queries.len() / DESCRIPTOR_LEN;
        let (q, o) = (queries.as_ptr(), out.as_mut_ptr());
        for r0 in (0..n).step_by(ROWS) {
            let rows = ROWS.min(n - r0);
            for p in 0..width / PANEL {
                let panel = packed.as_ptr().add(p * DESCRIPTOR_LEN * PANEL);
                let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
                for k in 0..DESCRIPTOR_LEN {
                    let (b0, b1) = (_mm256_loadu_ps(panel.add(k * PANEL)), _mm256_loadu_ps(panel.add(k * PANEL + 8)));
                    for (r, a) in acc.iter_mut().enumerate().take(rows) {
                        let v = _mm256_set1_ps(*q.add((r0 + r) * DESCRIPTOR_LEN + k));
                        a[0] = _mm256_fmadd_ps(v, b0, a[0]);
                        a[1] = _mm256_fmadd_ps(v, b1, a[1]);
                    }
                }
                for (r, a) in acc.iter().enumerate().take(rows) {
                    _mm256_storeu_ps(o.add((r0 + r) * width + p * PANEL), a[0]);
                    _mm256_storeu_ps(o.add((r0 + r) * width + p * PANEL + 8), a[1]);
                }
            }
        }
    }
}

/// For each descriptor of `queries`: (index of its nearest in `set`, squared distance,
/// squared distance of the second nearest or +∞); and, when `backward`, for each descriptor
/// of `set` the index of its nearest in `queries` (the first of equals). Both directions read
/// the same distances: the mutual check costs no second matrix product.
fn nearest(queries: &Features, set: &Features, backward: bool) -> crate::Result<(Vec<Nearest>, Vec<usize>)> {
    let (nq, ns) = (queries.len(), set.len());
    if nq == 0 || ns == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let packed = pack(set);
    let width = packed.len() / DESCRIPTOR_LEN;
    let s_norm: Vec<f32> = set.descriptors.chunks_exact(DESCRIPTOR_LEN).map(squared_norm).collect();
    let mut out = Vec::with_capacity(nq);
    let mut back = ColumnBest::new(if backward { ns } else { 0 });
    for start in (0..nq).step_by(BLOCK) {
        let rows = BLOCK.min(nq - start);
        let block = &queries.descriptors[start * DESCRIPTOR_LEN..(start + rows) * DESCRIPTOR_LEN];
        // One pass per parallel band of rows: the band's products (a buffer that stays in the
        // cache), then each row's nearest two and the band's nearest row per column (merged
        // in order below).
        let bands: Vec<(Vec<Nearest>, ColumnBest)> = block
            .par_chunks(ROWS_PER_BAND * DESCRIPTOR_LEN)
            .enumerate()
            .map(|(band, queries)| {
                let mut column = ColumnBest::new(if backward { ns } else { 0 });
                let mut block = vec![0f32; queries.len() / DESCRIPTOR_LEN * width];
                products(queries, &packed, &mut block);
                let mut d = vec![0f32; ns];
                let nearest = block
                    .chunks_exact(width)
                    .zip(queries.chunks_exact(DESCRIPTOR_LEN))
                    .enumerate()
                    .map(|(i, (products, q))| {
                        let row = band * ROWS_PER_BAND + i;
                        let qn = squared_norm(q);
                        // ‖q‖² + ‖s‖² − 2 q·s as libtorch evaluated it (sum, then the doubled
                        // product subtracted, then clamped at 0), to the last bit.
                        for ((d, &sn), &p) in d.iter_mut().zip(&s_norm).zip(products) {
                            let v = (qn + sn) - p * 2.0;
                            *d = if v < 0.0 { 0.0 } else { v };
                        }
                        if backward {
                            column.update(&d, start + row);
                        }
                        let (mut best, mut second, mut at) = (f32::INFINITY, f32::INFINITY, 0);
                        for (j, &d) in d.iter().enumerate() {
                            if d < second {
                                if d < best {
                                    (second, best, at) = (best, d, j);
                                } else {
                                    second = d;
                                }
                            }
                        }
                        (at, best, second)
                    })
                    .collect();
                (nearest, column)
            })
            .collect();
        // Bands and blocks in order, ties to the earlier: the first of equals.
        for (nearest, column) in bands {
            out.extend(nearest);
            back.merge(&column);
        }
    }
    Ok((out, back.row))
}

/// Query rows per parallel band of a block's distances.
const ROWS_PER_BAND: usize = 64;

/// Each column's smallest distance in the rows seen so far and the first row that has it
/// (two arrays, so the update runs across columns in vector registers).
struct ColumnBest {
    value: Vec<f32>,
    row: Vec<usize>,
}

impl ColumnBest {
    fn new(columns: usize) -> ColumnBest {
        ColumnBest { value: vec![f32::INFINITY; columns], row: vec![0; columns] }
    }

    /// Row `row`'s distances `d` seen (a later row wins only by being smaller).
    fn update(&mut self, d: &[f32], row: usize) {
        for ((v, r), &d) in self.value.iter_mut().zip(self.row.iter_mut()).zip(d) {
            let smaller = d < *v;
            *v = if smaller { d } else { *v };
            *r = if smaller { row } else { *r };
        }
    }

    /// The columns of `later` (rows after all of this one's) seen, by the same rule.
    fn merge(&mut self, later: &ColumnBest) {
        for (((v, r), &lv), &lr) in self.value.iter_mut().zip(self.row.iter_mut()).zip(&later.value).zip(&later.row) {
            if lv < *v {
                (*v, *r) = (lv, lr);
            }
        }
    }
}

/// Matches fixed → moving passing the ratio test (best < ratio × second best), and, if
/// `mutual`, whose moving descriptor's nearest fixed descriptor is the same one.
pub fn match_features(fixed: &Features, moving: &Features, ratio: f32, mutual: bool) -> crate::Result<Vec<Match>> {
    let (forward, backward) = nearest(fixed, moving, mutual)?;
    Ok(forward
        .into_iter()
        .enumerate()
        .filter(|&(i, (j, d1, d2))| d1 < ratio * ratio * d2 && (!mutual || backward.get(j) == Some(&i)))
        .map(|(i, (j, d1, _))| Match { fixed: i, moving: j, distance: d1.sqrt() })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::sift::Keypoint;
    use crate::rng::Rng;

    fn features(descriptors: Vec<f32>) -> Features {
        Features { keypoints: vec![Keypoint::default(); descriptors.len() / DESCRIPTOR_LEN], descriptors }
    }

    /// The matches by their definition: every distance in f64, one pair at a time.
    fn plain(fixed: &Features, moving: &Features, ratio: f32, mutual: bool) -> Vec<(usize, usize)> {
        let d2 = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>();
        let nearest_two = |q: &[f32], set: &Features| {
            let mut d: Vec<(f64, usize)> = (0..set.len()).map(|j| (d2(q, set.descriptor(j)), j)).collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0));
            (d[0].1, d[0].0, d.get(1).map_or(f64::INFINITY, |s| s.0))
        };
        (0..fixed.len())
            .filter_map(|i| {
                let (j, d1, second) = nearest_two(fixed.descriptor(i), moving);
                let ok = d1 < (ratio * ratio) as f64 * second && (!mutual || nearest_two(moving.descriptor(j), fixed).0 == i);
                ok.then_some((i, j))
            })
            .collect()
    }

    #[test]
    fn matches_are_the_plain_nearest_neighbours_across_blocks() {
        // More fixed descriptors than one block holds, so the mutual check merges blocks; a
        // third of the moving ones are noisy copies of fixed ones from every block.
        let mut rng = Rng::new(3);
        let fixed: Vec<f32> = (0..(BLOCK + 500) * DESCRIPTOR_LEN).map(|_| rng.uniform() as f32).collect();
        let mut moving: Vec<f32> = (0..300 * DESCRIPTOR_LEN).map(|_| rng.uniform() as f32).collect();
        for m in 0..100 {
            let f = (m * 25) % (BLOCK + 500);
            for k in 0..DESCRIPTOR_LEN {
                moving[m * DESCRIPTOR_LEN + k] = fixed[f * DESCRIPTOR_LEN + k] + 0.05 * rng.uniform() as f32;
            }
        }
        let (fixed, moving) = (features(fixed), features(moving));
        for mutual in [false, true] {
            let found: Vec<(usize, usize)> = match_features(&fixed, &moving, 0.8, mutual).unwrap().iter().map(|m| (m.fixed, m.moving)).collect();
            assert_eq!(found, plain(&fixed, &moving, 0.8, mutual), "mutual: {mutual}");
            assert!(found.len() >= 100, "{} matches", found.len());
        }
        // Mutual: the copies in the second block are found too (its indices offset by BLOCK).
        let mutual = match_features(&fixed, &moving, 0.8, true).unwrap();
        assert!(mutual.iter().any(|m| m.fixed >= BLOCK));
    }

    /// Every width's products are the plain chain of multiply-adds, to the last bit, for
    /// query counts that fill no group and set sizes that fill no panel.
    #[test]
    fn products_are_the_same_on_every_width() {
        let mut rng = Rng::new(4);
        for (nq, ns) in [(1, 1), (13, 17), (64, 50), (9, 33)] {
            let q: Vec<f32> = (0..nq * DESCRIPTOR_LEN).map(|_| rng.uniform() as f32 - 0.3).collect();
            let set = features((0..ns * DESCRIPTOR_LEN).map(|_| rng.uniform() as f32).collect());
            let packed = pack(&set);
            let width = packed.len() / DESCRIPTOR_LEN;
            let mut want = vec![0f32; nq * width];
            products_plain(&q, &packed, &mut want);
            for i in 0..nq {
                for j in 0..ns {
                    let chain = q[i * DESCRIPTOR_LEN..][..DESCRIPTOR_LEN].iter().zip(set.descriptor(j)).fold(0f32, |a, (&x, &y)| x.mul_add(y, a));
                    assert_eq!(want[i * width + j].to_bits(), chain.to_bits(), "{i}, {j}");
                }
            }
            let mut got = vec![7f32; nq * width];
            products(&q, &packed, &mut got);
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "the widest kernel");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                let mut got = vec![7f32; nq * width];
                // SAFETY: AVX2 and FMA are present; `got` holds a row of `width` per query.
                unsafe { simd::products_avx2(&q, &packed, &mut got) };
                assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "AVX2");
            }
        }
    }

    /// The distances are libtorch's ‖q‖² + ‖s‖² − 2 q·s, clamped, to the last bit (matches,
    /// and which pass the ratio test, stay what they were when libtorch computed them), and
    /// the nearest in each direction is libtorch's top-2 and column minimum. (On a CPU where
    /// libtorch sums with AVX-512 kernels its norms round otherwise: this project's machines
    /// use its AVX2 kernels, and the order of [`squared_norm`] is theirs.)
    #[cfg(feature = "torch")]
    #[test]
    fn distances_and_nearest_are_libtorchs_to_the_last_bit() {
        use tch::{Kind, Tensor};
        let mut rng = Rng::new(9);
        let (nq, ns) = (300, 500);
        let q: Vec<f32> = (0..nq * DESCRIPTOR_LEN).map(|_| rng.uniform() as f32).collect();
        let s: Vec<f32> = (0..ns * DESCRIPTOR_LEN).map(|_| rng.uniform() as f32).collect();
        let (qt, st) = (Tensor::from_slice(&q).reshape([nq as i64, DESCRIPTOR_LEN as i64]), Tensor::from_slice(&s).reshape([ns as i64, DESCRIPTOR_LEN as i64]));
        let d2 = (qt.square().sum_dim_intlist(1, true, Kind::Float) + st.square().sum_dim_intlist(1, false, Kind::Float).unsqueeze(0) - qt.matmul(&st.transpose(0, 1)) * 2.0).clamp_min(0.0);
        let (top, _) = d2.topk(2, 1, false, true);
        let top: Vec<f32> = Vec::try_from(top.reshape([-1])).unwrap();
        let d2v: Vec<f32> = Vec::try_from(d2.reshape([-1])).unwrap();
        let columns: Vec<i64> = Vec::try_from(d2.min_dim(0, false).1).unwrap();
        let (forward, backward) = nearest(&features(q), &features(s), true).unwrap();
        for (r, &(at, best, second)) in forward.iter().enumerate() {
            assert_eq!((best.to_bits(), second.to_bits()), (top[2 * r].to_bits(), top[2 * r + 1].to_bits()), "row {r}");
            assert_eq!(d2v[r * ns + at].to_bits(), best.to_bits(), "row {r}: index of the nearest");
        }
        assert_eq!(backward, columns.iter().map(|&i| i as usize).collect::<Vec<_>>());
    }

    /// A moving descriptor equally near two fixed ones (equal descriptors in one band, in two
    /// bands of a block, and in two blocks): its nearest is the first of them, so only the first passes
    /// the mutual check, as the plain search (a stable sort) has it.
    #[test]
    fn equal_distances_go_to_the_first_descriptor() {
        let mut rng = Rng::new(5);
        let mut fixed: Vec<f32> = (0..(BLOCK + 200) * DESCRIPTOR_LEN).map(|_| rng.uniform() as f32).collect();
        let copy = |fixed: &mut Vec<f32>, from: usize, to: usize| {
            for k in 0..DESCRIPTOR_LEN {
                fixed[to * DESCRIPTOR_LEN + k] = fixed[from * DESCRIPTOR_LEN + k];
            }
        };
        let twins = [(30, 40), (10, 10 + 3 * ROWS_PER_BAND), (20, BLOCK + 50)];
        for &(first, second) in &twins {
            copy(&mut fixed, first, second);
        }
        let mut moving: Vec<f32> = (0..50 * DESCRIPTOR_LEN).map(|_| rng.uniform() as f32).collect();
        for (m, &(first, _)) in twins.iter().enumerate() {
            for k in 0..DESCRIPTOR_LEN {
                moving[m * DESCRIPTOR_LEN + k] = fixed[first * DESCRIPTOR_LEN + k] + 0.02 * rng.uniform() as f32;
            }
        }
        let (fixed, moving) = (features(fixed), features(moving));
        let found: Vec<(usize, usize)> = match_features(&fixed, &moving, 0.8, true).unwrap().iter().map(|m| (m.fixed, m.moving)).collect();
        assert_eq!(found, plain(&fixed, &moving, 0.8, true));
        for (m, &(first, second)) in twins.iter().enumerate() {
            assert!(found.contains(&(first, m)) && !found.contains(&(second, m)), "twins {first}, {second}: {found:?}");
        }
    }
}
