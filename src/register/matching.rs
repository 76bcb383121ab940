//! Matching descriptors: nearest neighbour with Lowe's ratio test, optionally mutual.
//!
//! All squared distances of a block of queries to the whole set come from one matrix product
//! (‖a‖² + ‖b‖² − 2 a·b) through libtorch's GEMM, blocks bounding the memory.
use super::sift::{Features, DESCRIPTOR_LEN};
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
/// of `set` the index of its nearest in `queries`. Both directions read the same distance
/// blocks: the mutual check costs no second matrix product (1 MP: 2 × 4 GFLOP before).
fn nearest(queries: &Features, set: &Features, backward: bool) -> crate::Result<(Vec<Nearest>, Vec<usize>)> {
    let (nq, ns) = (queries.len(), set.len());
    if nq == 0 || ns == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let s = Tensor::from_slice(&set.descriptors).reshape([ns as i64, DESCRIPTOR_LEN as i64]);
    let s_norm = s.square().sum_dim_intlist(1, false, Kind::Float).unsqueeze(0);
    let k = ns.min(2) as i64;
    let mut out = Vec::with_capacity(nq);
    // Per set descriptor: the smallest squared distance to the queries so far, and which.
    let mut back: Vec<(f32, usize)> = if backward { vec![(f32::INFINITY, 0); ns] } else { Vec::new() };
    for start in (0..nq).step_by(BLOCK) {
        let rows = BLOCK.min(nq - start);
        let q = Tensor::from_slice(&queries.descriptors[start * DESCRIPTOR_LEN..(start + rows) * DESCRIPTOR_LEN]).reshape([rows as i64, DESCRIPTOR_LEN as i64]);
        let q_norm = q.square().sum_dim_intlist(1, true, Kind::Float);
        let d2 = (q_norm + &s_norm - q.matmul(&s.transpose(0, 1)) * 2.0).clamp_min(0.0);
        let (values, indices) = d2.topk(k, 1, false, true);
        let values: Vec<f32> = Vec::try_from(values.reshape([-1]))?;
        let indices: Vec<i64> = Vec::try_from(indices.reshape([-1]))?;
        for r in 0..rows {
            let k = k as usize;
            let second = if k == 2 { values[r * k + 1] } else { f32::INFINITY };
            out.push((indices[r * k] as usize, values[r * k], second));
        }
        if backward {
            let (values, indices) = d2.min_dim(0, false);
            let values: Vec<f32> = Vec::try_from(values)?;
            let indices: Vec<i64> = Vec::try_from(indices)?;
            // Of equal distances in two blocks, the earlier block's query is kept.
            for ((b, &v), &i) in back.iter_mut().zip(&values).zip(&indices) {
                if v < b.0 {
                    *b = (v, start + i as usize);
                }
            }
        }
    }
    Ok((out, back.into_iter().map(|(_, i)| i).collect()))
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
}
