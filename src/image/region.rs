//! The part of an image a user restricts work to: a rectangle (`--region`, a rectangular ROI)
//! or any ImageJ area ROI (polygon, freehand, oval, composite) as its bounding rectangle plus
//! a mask of the pixels inside the shape.
use super::Image;
use crate::error::{Error, Result};
use crate::register::mask::Mask;
use crate::register::transform::Affine2;
use ndarray::{s, Array2, Array3};

/// A rectangle x, y, width, height in pixels.
pub type Rect = [usize; 4];

#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// Top-left corner; may lie outside the image (an ROI dragged past its edge).
    pub x: i64,
    pub y: i64,
    pub width: usize,
    pub height: usize,
    /// height × width: which pixels of the rectangle belong to the shape (None: all).
    pub mask: Option<Mask>,
}

impl Region {
    pub fn rect([x, y, width, height]: Rect) -> Region {
        Region { x: x as i64, y: y as i64, width, height, mask: None }
    }

    /// An ROI as ImageJ gives it: its bounds and `Roi.getMask()`'s bytes (row-major,
    /// width × height, nonzero inside), or no bytes for a rectangle.
    pub fn from_roi(x: i64, y: i64, width: usize, height: usize, mask: Option<&[u8]>) -> Result<Region> {
        let mask = match mask {
            None => None,
            Some(bytes) if bytes.len() == width * height => Some(Array2::from_shape_fn((height, width), |(r, c)| bytes[r * width + c] != 0)),
            Some(bytes) => return Err(Error::Region(format!("the ROI mask has {} values for a {width}×{height} ROI", bytes.len()))),
        };
        Ok(Region { x, y, width, height, mask })
    }

    /// The part of the region inside a `width` × `height` image: its rectangle, and its mask
    /// when the shape is not the whole rectangle. Refuses a region with no pixel in the image.
    pub fn clip(&self, width: usize, height: usize) -> Result<(Rect, Option<Mask>)> {
        let (x0, y0) = (self.x.max(0), self.y.max(0));
        let (x1, y1) = ((self.x + self.width as i64).min(width as i64), (self.y + self.height as i64).min(height as i64));
        let outside = || Error::Region(format!("the region {},{} {}×{} has no pixel inside the {width}×{height} image", self.x, self.y, self.width, self.height));
        if x1 <= x0 || y1 <= y0 {
            return Err(outside());
        }
        let rect = [x0 as usize, y0 as usize, (x1 - x0) as usize, (y1 - y0) as usize];
        let Some(mask) = &self.mask else { return Ok((rect, None)) };
        let (ox, oy) = ((x0 - self.x) as usize, (y0 - self.y) as usize);
        let clipped = mask.slice(s![oy..oy + rect[3], ox..ox + rect[2]]).to_owned();
        if !clipped.iter().any(|&b| b) {
            return Err(outside());
        }
        Ok((rect, (!clipped.iter().all(|&b| b)).then_some(clipped)))
    }
}

/// Refuse empty regions and regions reaching outside a width × height image.
pub fn check_rect([x, y, w, h]: Rect, width: usize, height: usize) -> Result<()> {
    if w == 0 || h == 0 || x + w > width || y + h > height {
        return Err(Error::Region(format!("the region {x},{y},{w},{h} does not lie inside the {width}×{height} image")));
    }
    Ok(())
}

/// The part of `image` inside `rect` (all slices and channels), and the map from the crop's
/// pixels to the image's.
pub fn crop(image: &Image, rect: Option<Rect>) -> Result<(Image, Affine2)> {
    let Some([x, y, w, h]) = rect else { return Ok((image.clone(), Affine2::IDENTITY)) };
    check_rect([x, y, w, h], image.width(), image.height())?;
    let data = image.data.slice(s![.., .., y..y + h, x..x + w]).to_owned();
    Ok((Image { data, pixel_type: image.pixel_type, calibration: image.calibration.clone() }, Affine2::translation(x as f64, y as f64)))
}

/// The part of a (C, H, W) network input inside `rect`.
pub fn crop_input(x: Array3<f32>, rect: Option<Rect>) -> Result<Array3<f32>> {
    let Some([rx, ry, rw, rh]) = rect else { return Ok(x) };
    let (_, h, w) = x.dim();
    check_rect([rx, ry, rw, rh], w, h)?;
    Ok(x.slice(s![.., ry..ry + rh, rx..rx + rw]).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_roi_past_the_edge_is_clipped_with_its_mask() {
        // A 4×3 ROI at (-1, 1): a triangle, its first column outside a 6×6 image.
        let bytes = [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0u8];
        let r = Region::from_roi(-1, 1, 4, 3, Some(&bytes)).unwrap();
        let (rect, mask) = r.clip(6, 6).unwrap();
        assert_eq!(rect, [0, 1, 3, 3]);
        let mask = mask.unwrap();
        assert_eq!(mask.row(0).to_vec(), vec![false, false, false]);
        assert_eq!(mask.row(2).to_vec(), vec![true, true, false]);
        // A rectangle's mask, or a shape whose inside covers its clipped rectangle, is no mask.
        assert_eq!(Region::rect([1, 1, 2, 2]).clip(6, 6).unwrap(), ([1, 1, 2, 2], None));
        assert_eq!(Region::from_roi(-1, 0, 2, 1, Some(&[0, 1])).unwrap().clip(6, 6).unwrap(), ([0, 0, 1, 1], None));
        assert!(Region::rect([7, 0, 2, 2]).clip(6, 6).unwrap_err().to_string().contains("no pixel inside"));
        assert!(Region::from_roi(-1, 0, 2, 1, Some(&[1, 0])).unwrap().clip(6, 6).is_err());
        assert!(Region::from_roi(0, 0, 2, 2, Some(&[1])).is_err());
    }
}
