//! Matching descriptors: nearest neighbour with Lowe's ratio test, optionally mutual.
use super::sift::{Features, DESCRIPTOR_LEN};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    pub fixed: usize,
    pub moving: usize,
    pub distance: f32,
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// (best index, best squared distance, second-best squared distance) of `d` among `set`.
fn two_nearest(d: &[f32], set: &Features) -> Option<(usize, f32, f32)> {
    let mut best = (usize::MAX, f32::INFINITY, f32::INFINITY);
    for j in 0..set.len() {
        let dist = squared_distance(d, set.descriptor(j));
        if dist < best.1 {
            best = (j, dist, best.1);
        } else if dist < best.2 {
            best.2 = dist;
        }
    }
    (best.0 != usize::MAX).then_some(best)
}

/// Matches fixed → moving passing the ratio test (best < ratio × second best), and, if
/// `mutual`, whose moving descriptor's nearest fixed descriptor is the same one.
pub fn match_features(fixed: &Features, moving: &Features, ratio: f32, mutual: bool) -> Vec<Match> {
    debug_assert_eq!(fixed.descriptors.len(), fixed.len() * DESCRIPTOR_LEN);
    let forward: Vec<Option<Match>> = (0..fixed.len())
        .into_par_iter()
        .map(|i| {
            let (j, d1, d2) = two_nearest(fixed.descriptor(i), moving)?;
            (d1 < ratio * ratio * d2).then_some(Match { fixed: i, moving: j, distance: d1.sqrt() })
        })
        .collect();
    let mut matches: Vec<Match> = forward.into_iter().flatten().collect();
    if mutual {
        let back: Vec<bool> = matches
            .par_iter()
            .map(|m| two_nearest(moving.descriptor(m.moving), fixed).is_some_and(|(i, _, _)| i == m.fixed))
            .collect();
        matches = matches.into_iter().zip(back).filter_map(|(m, ok)| ok.then_some(m)).collect();
    }
    matches
}
