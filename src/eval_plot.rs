//! The evaluation's plot: success rate per difficulty level, one bar per method, as a PNG
//! (`comir eval` writes eval.png next to the CSV and the table). Drawn here, with a small
//! bitmap font, to keep a plotting stack out of the library.
use crate::error::Result;
use crate::eval::{EvalMethod, EvalRow};
use crate::files::write_atomically;
use image::ImageEncoder;
use std::path::Path;

const WIDTH: usize = 800;
const HEIGHT: usize = 420;
const PLOT: (usize, usize, usize, usize) = (70, 60, 780, 350); // left, top, right, bottom
const COLOURS: [[u8; 3]; 5] = [[0, 114, 178], [230, 159, 0], [86, 180, 233], [0, 158, 115], [204, 121, 167]]; // colour-blind safe (Okabe–Ito)
const GRID: [u8; 3] = [215, 215, 215];
const INK: [u8; 3] = [30, 30, 30];

/// 5 × 7 glyphs, one byte per row, bit 4 = leftmost pixel.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        _ => [0; 7], // space and anything the font lacks
    }
}

struct Canvas {
    rgb: Vec<u8>,
}

impl Canvas {
    fn new() -> Canvas {
        Canvas { rgb: vec![255; WIDTH * HEIGHT * 3] }
    }

    fn fill(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, colour: [u8; 3]) {
        for y in y0.min(HEIGHT)..y1.min(HEIGHT) {
            for x in x0.min(WIDTH)..x1.min(WIDTH) {
                self.rgb[(y * WIDTH + x) * 3..][..3].copy_from_slice(&colour);
            }
        }
    }

    /// Text at (x, y) (top left), `scale` pixels per font pixel; returns the width drawn.
    fn text(&mut self, x: usize, y: usize, text: &str, scale: usize) -> usize {
        let text = text.replace('α', "alpha").to_uppercase();
        for (i, c) in text.chars().enumerate() {
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let (px, py) = (x + (i * 6 + col) * scale, y + row * scale);
                        self.fill(px, py, px + scale, py + scale, INK);
                    }
                }
            }
        }
        text.chars().count() * 6 * scale
    }
}

/// Success rate in percent of `method` at `level`, if it was evaluated there.
fn success_rate(rows: &[EvalRow], method: EvalMethod, level: usize) -> Option<f64> {
    let r: Vec<&EvalRow> = rows.iter().filter(|r| r.method == method && r.level == level).collect();
    (!r.is_empty()).then(|| 100.0 * r.iter().filter(|r| r.success).count() as f64 / r.len() as f64)
}

/// The plot as interleaved RGB, WIDTH × HEIGHT.
pub fn render(rows: &[EvalRow]) -> (Vec<u8>, usize, usize) {
    let mut c = Canvas::new();
    let (left, top, right, bottom) = PLOT;
    let methods = crate::eval::methods_in(rows);
    let y_of = |percent: f64| bottom - ((bottom - top) as f64 * percent / 100.0).round() as usize;

    c.text(left, 16, "success rate per level (error <= 2% of the width)", 2);
    for percent in [0, 25, 50, 75, 100] {
        let y = y_of(percent as f64);
        c.fill(left, y, right, y + 1, GRID);
        let label = format!("{percent}%");
        c.text(left - 12 - label.len() * 12, y - 7, &label, 2);
    }
    let group = (right - left) / 5;
    let bar = (group - 24) / methods.len().max(1);
    for level in 1..=5 {
        let x0 = left + (level - 1) * group + 12;
        for (k, &m) in methods.iter().enumerate() {
            if let Some(rate) = success_rate(rows, m, level) {
                // A thin sliver at 0% shows that the method ran and failed.
                let y = y_of(rate).min(bottom - 2);
                c.fill(x0 + k * bar, y, x0 + (k + 1) * bar - 2, bottom, COLOURS[k % COLOURS.len()]);
            }
        }
        let label = if level == 5 { "any".to_string() } else { format!("L{level}") };
        c.text(x0 + (group - 24) / 2 - label.len() * 6, bottom + 10, &label, 2);
    }
    c.fill(left, bottom, right, bottom + 1, INK);
    let mut x = left;
    for (k, m) in methods.iter().enumerate() {
        c.fill(x, HEIGHT - 30, x + 14, HEIGHT - 16, COLOURS[k % COLOURS.len()]);
        x += 22 + c.text(x + 22, HEIGHT - 30, m.label(), 2) + 14;
    }
    (c.rgb, WIDTH, HEIGHT)
}

/// Write the plot as a PNG (atomically).
pub fn write_png(path: &Path, rows: &[EvalRow]) -> Result<()> {
    let (rgb, w, h) = render(rows);
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(&rgb, w as u32, h as u32, image::ExtendedColorType::Rgb8)
        .map_err(|e| crate::Error::Internal(format!("cannot encode the plot: {e}")))?;
    write_atomically(path, |out| Ok(std::io::Write::write_all(out, &bytes)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: EvalMethod, level: usize, success: bool) -> EvalRow {
        EvalRow { method, level, sample: 0, rotation_degrees: 0.0, error_px: 0.0, success, quality_passed: success, quality_rival: 0.0, quality_score: 0.0, seconds: 0.0, chosen: String::new(), candidates: String::new(), refinement: String::new() }
    }

    fn pixel(rgb: &[u8], x: usize, y: usize) -> [u8; 3] {
        let i = (y * WIDTH + x) * 3;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    }

    #[test]
    fn bar_heights_follow_the_success_rates() {
        // Level 1: SIFT 100%, MI 50%; level 2: SIFT 0%.
        let rows = vec![
            row(EvalMethod::ComirSift, 1, true),
            row(EvalMethod::ComirSift, 1, true),
            row(EvalMethod::Mi, 1, true),
            row(EvalMethod::Mi, 1, false),
            row(EvalMethod::ComirSift, 2, false),
        ];
        let (rgb, _, _) = render(&rows);
        let (_, top, _, bottom) = PLOT;
        let group = (PLOT.2 - PLOT.0) / 5;
        let bar = (group - 24) / 2;
        let centre = |level: usize, k: usize| PLOT.0 + (level - 1) * group + 12 + k * bar + bar / 2;
        let mid = (top + bottom) / 2;
        // SIFT at level 1 reaches near the top; MI at level 1 reaches half way, not more.
        assert_eq!(pixel(&rgb, centre(1, 0), top + 3), COLOURS[0]);
        assert_eq!(pixel(&rgb, centre(1, 1), mid + 3), COLOURS[1]);
        assert_ne!(pixel(&rgb, centre(1, 1), mid - 6), COLOURS[1]);
        // SIFT failed everything at level 2: only the sliver at the axis.
        assert_eq!(pixel(&rgb, centre(2, 0), bottom - 1), COLOURS[0]);
        assert_ne!(pixel(&rgb, centre(2, 0), bottom - 10), COLOURS[0]);
        // Nothing for MI at level 2, where it did not run.
        assert_ne!(pixel(&rgb, centre(2, 1), bottom - 1), COLOURS[1]);
    }

    #[test]
    fn every_label_character_has_a_glyph() {
        for label in ["CoMIR+SIFT", "CoMIR+α-AMD", "MI", "success rate per level (error <= 2% of the width)", "any", "L1", "100%"] {
            let text = label.replace('α', "alpha").to_uppercase();
            for ch in text.chars().filter(|&c| c != ' ') {
                assert_ne!(glyph(ch), [0; 7], "no glyph for {ch:?} in {label}");
            }
        }
    }
}
