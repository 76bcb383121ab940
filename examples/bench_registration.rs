//! Timing helper for bench/*.sh: runs one of our algorithms on image files and prints
//! machine-readable lines ("key value"), so the scripts can put them next to a peer's.
//!
//!   bench_registration sift IMAGE [MAX]        detect+describe, best of 5 (and a digest of
//!                                              the result, to tell two builds apart)
//!   bench_registration register FIXED MOVING   SIFT+matching+RANSAC registration, best of 3
//!   bench_registration amd FIXED MOVING        α-AMD rigid registration, best of 3, as
//!                                              `comir register --method amd` runs it on
//!                                              CoMIRs (here the two images themselves):
//!                                              α-AMD, then the polish at full resolution
//!   bench_registration amd-alone FIXED MOVING  the same without the polish (α-AMD to full
//!                                              resolution itself)
//!   bench_registration mi FIXED MOVING         MI rigid registration of raw images, one run
use comir::image::io::read_image;
use comir::progress::Silent;
use comir::register::pipeline::{register_planes, Method, RegisterOptions};
use comir::register::sift::{detect_and_describe, SiftOptions};
use std::time::Instant;

fn plane(path: &str) -> ndarray::Array2<f32> {
    let img = read_image(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    comir::image::filter::normalise_robust(comir::gray_plane(&img).view())
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.expect("n > 0"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("sift") => {
            let p = plane(&args[2]);
            let max = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(0);
            let (t, f) = best_of(5, || detect_and_describe(p.view(), &SiftOptions { max_features: max, ..Default::default() }));
            // A digest of every keypoint's position, scale, angle and every descriptor value, bit
            // for bit (FNV-1a's multiply-xor over 64-bit words): an A/B of two builds checks with
            // it that both found the same.
            let bits = f.keypoints.iter().flat_map(|k| [k.x, k.y, k.scale, k.angle].map(f64::to_bits)).chain(f.descriptors.iter().map(|v| u64::from(v.to_bits())));
            let digest = bits.fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b).wrapping_mul(0x100_0000_01b3));
            println!("seconds {t:.4}\nkeypoints {}\ndigest {digest:016x}", f.len());
        }
        Some(m @ ("register" | "amd" | "amd-alone")) => {
            let (f, mv) = (plane(&args[2]), plane(&args[3]));
            let method = if m == "register" { Method::Sift } else { Method::AlphaAmd };
            let o = RegisterOptions { method, any_rotation: false, refine: m == "amd", ..Default::default() };
            let image = |p: &ndarray::Array2<f32>| comir::image::Image { data: p.clone().insert_axis(ndarray::Axis(0)).insert_axis(ndarray::Axis(0)), pixel_type: comir::image::PixelType::F32, calibration: Default::default() };
            let (fi, mi) = (image(&f), image(&mv));
            let (t, r) = best_of(3, || {
                let r = if m == "amd" { comir::register_with_comirs(&fi, &mi, f.view(), mv.view(), Default::default(), &o, &Silent) } else { register_planes(f.view(), mv.view(), true, &o, &Silent) };
                r.unwrap_or_else(|e| panic!("{e}"))
            });
            let mm = r.transform.m;
            println!("seconds {t:.4}\nmatrix {} {} {} {} {} {}\ninliers {}", mm[0][0], mm[0][1], mm[0][2], mm[1][0], mm[1][1], mm[1][2], r.matches.len());
        }
        Some("mi") => {
            let (f, mv) = (plane(&args[2]), plane(&args[3]));
            let o = RegisterOptions { method: Method::Mi, any_rotation: false, ..Default::default() };
            let (t, r) = best_of(1, || register_planes(f.view(), mv.view(), false, &o, &Silent).unwrap_or_else(|e| panic!("{e}")));
            let mm = r.transform.m;
            println!("seconds {t:.4}\nmatrix {} {} {} {} {} {}\npassed {}", mm[0][0], mm[0][1], mm[0][2], mm[1][0], mm[1][1], mm[1][2], r.quality.passed);
        }
        _ => eprintln!("usage: bench_registration sift IMAGE [MAX] | register FIXED MOVING | amd FIXED MOVING | amd-alone FIXED MOVING | mi FIXED MOVING"),
    }
}
