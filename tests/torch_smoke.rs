//! libtorch is provisioned and computes: a real conv2d through tch.
use tch::{Device, Kind, Tensor};

#[test]
fn conv2d_of_ones_sums_to_36() {
    assert_eq!(comir::model::device::conv2d_smoke(Device::Cpu).unwrap(), 36.0);
}

#[test]
fn conv2d_matches_a_hand_computed_correlation() {
    // 3×3 input 1..9, 2×2 kernel [[1, 0], [0, -1]] (cross-correlation, as in every CNN library).
    let x = Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6., 7., 8., 9.]).reshape([1, 1, 3, 3]);
    let k = Tensor::from_slice(&[1f32, 0., 0., -1.]).reshape([1, 1, 2, 2]);
    let y = x.conv2d(&k, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
    let v: Vec<f32> = y.reshape([-1]).to_kind(Kind::Float).try_into().unwrap();
    assert_eq!(v, vec![1. - 5., 2. - 6., 4. - 8., 5. - 9.]);
}
