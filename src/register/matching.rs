//! Matching descriptors: nearest neighbour with Lowe's ratio test, optionally mutual.
//!
//! All squared distances of a block of queries to the whole set come from one matrix product
//! (‖a‖² + ‖b‖² − 2 a·b) through libtorch's GEMM, blocks bounding the memory.
use super::sift::{Features, DESCRIPTOR_LEN};
use rayon::prelude::*;
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    pub fixed: usize,
    pub moving: usize,
    pub distance: f32,
}

/// Rows of queries per matrix product (a block holds rows × set size distances).
const BLOCK: usize = 2048;

/// A query's nearest: (its index in the set, squared distance, squared distance of the second).
type Nearest = (usize, f32, f32);

/// For each descriptor of `queries`: (index of its nearest in `set`, squared distance,
/// squared distance of the second nearest or +∞); and, when `backward`, for each descriptor
/// of `set` the index of its nearest in `queries` (the first of equals). Both directions read
/// the same distance blocks: the mutual check costs no second matrix product (1 MP: 2 × 4
/// GFLOP before).
fn nearest(queries: &Features, set: &Features, backward: bool) -> crate::Result<(Vec<Nearest>, Vec<usize>)> {
    let (nq, ns) = (queries.len(), set.len());
    if nq == 0 || ns == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let s = Tensor::from_slice(&set.descriptors).reshape([ns as i64, DESCRIPTOR_LEN as i64]);
    let s_norm: Vec<f32> = Vec::try_from(s.square().sum_dim_intlist(1, false, Kind::Float))?;
    let s_t = s.transpose(0, 1);
    let mut out = Vec::with_capacity(nq);
    let mut back = ColumnBest::new(if backward { ns } else { 0 });
    for start in (0..nq).step_by(BLOCK) {
        let rows = BLOCK.min(nq - start);
        let q = Tensor::from_slice(&queries.descriptors[start * DESCRIPTOR_LEN..(start + rows) * DESCRIPTOR_LEN]).reshape([rows as i64, DESCRIPTOR_LEN as i64]);
        let q_norm: Vec<f32> = Vec::try_from(q.square().sum_dim_intlist(1, true, Kind::Float).reshape([-1]))?;
        let product = q.matmul(&s_t).contiguous();
        if product.kind() != Kind::Float || product.numel() != rows * ns {
            return Err(crate::Error::Internal(format!("descriptor products of {:?} and kind {:?}", product.size(), product.kind())));
        }
        // SAFETY: `product` is a live, contiguous float CPU tensor of rows × ns values
        // (checked above; its inputs came from slices) and outlives this borrow, which ends
        // with the loop iteration; nothing writes to it meanwhile. Read in place: a copy of
        // the block (32 MB at 1 MP) took a tenth of the matching.
        let products = unsafe { std::slice::from_raw_parts(product.data_ptr() as *const f32, rows * ns) };
        // One pass over the block's distances, in parallel bands of rows: each row's nearest
        // two, and each band's nearest row per column (merged in order below). libtorch's
        // element-wise sum, scaling, clamp, top-2 and column minimum each went over the whole
        // block and took 3 times the matrix product's time (1 MP: 70 of 84 ms).
        let bands: Vec<(Vec<Nearest>, ColumnBest)> = products
            .par_chunks(ROWS_PER_BAND * ns)
            .enumerate()
            .map(|(band, block)| {
                let mut column = ColumnBest::new(if backward { ns } else { 0 });
                let mut d = vec![0f32; ns];
                let nearest = block
                    .chunks_exact(ns)
                    .enumerate()
                    .map(|(i, products)| {
                        let row = band * ROWS_PER_BAND + i;
                        let qn = q_norm[row];
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

    /// The distances are libtorch's ‖q‖² + ‖s‖² − 2 q·s, clamped, to the last bit (matches,
    /// and which pass the ratio test, stay what they were when libtorch computed them), and
    /// the nearest in each direction is libtorch's top-2 and column minimum.
    #[test]
    fn distances_and_nearest_are_libtorchs_to_the_last_bit() {
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
