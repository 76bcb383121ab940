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

/// For each descriptor of `queries`: (index of its nearest in `set`, squared distance,
/// squared distance of the second nearest or +∞).
fn two_nearest(queries: &Features, set: &Features) -> crate::Result<Vec<(usize, f32, f32)>> {
    let (nq, ns) = (queries.len(), set.len());
    if nq == 0 || ns == 0 {
        return Ok(Vec::new());
    }
    let s = Tensor::from_slice(&set.descriptors).reshape([ns as i64, DESCRIPTOR_LEN as i64]);
    let s_norm = s.square().sum_dim_intlist(1, false, Kind::Float).unsqueeze(0);
    let k = ns.min(2) as i64;
    let mut out = Vec::with_capacity(nq);
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
    }
    Ok(out)
}

/// Matches fixed → moving passing the ratio test (best < ratio × second best), and, if
/// `mutual`, whose moving descriptor's nearest fixed descriptor is the same one.
pub fn match_features(fixed: &Features, moving: &Features, ratio: f32, mutual: bool) -> crate::Result<Vec<Match>> {
    let forward = two_nearest(fixed, moving)?;
    let backward = if mutual { two_nearest(moving, fixed)? } else { Vec::new() };
    Ok(forward
        .into_iter()
        .enumerate()
        .filter(|&(i, (j, d1, d2))| d1 < ratio * ratio * d2 && (!mutual || backward.get(j).is_some_and(|b| b.0 == i)))
        .map(|(i, (j, d1, _))| Match { fixed: i, moving: j, distance: d1.sqrt() })
        .collect())
}
