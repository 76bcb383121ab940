//! Reading and writing images: TIFF (8/16/32-bit, multi-page, ImageJ hyperstacks and
//! calibration) and PNG. Sizes are checked against the memory limit before decoding.
use super::{check_size, Calibration, Image, PixelType};
use crate::error::{Error, Result};
use crate::files::{read_bytes, write_atomically};
use ndarray::Array4;
use std::io::Cursor;
use std::path::Path;
use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::encoder::{colortype, Rational, TiffEncoder};
use tiff::tags::{ResolutionUnit, Tag};
use tiff::ColorType;

/// Read a TIFF or PNG file (recognised by its content, not its name).
pub fn read_image(path: &Path) -> Result<Image> {
    // TIFFs are decoded straight from the file: a 20000² page never sits in memory twice
    // (file bytes and pixels). PNGs are small enough to read whole.
    let mut magic = [0u8; 4];
    let opened = std::fs::File::open(path).and_then(|mut f| {
        let n = std::io::Read::read(&mut f, &mut magic)?;
        Ok((f, n))
    });
    let decode_error = |reason| Error::Decode { path: path.to_path_buf(), reason };
    match opened {
        Ok((file, n)) if n >= 2 && (magic.starts_with(b"II") || magic.starts_with(b"MM")) => {
            let mut reader = std::io::BufReader::new(file);
            std::io::Seek::rewind(&mut reader).map_err(|e| Error::Read { path: path.to_path_buf(), source: e })?;
            decode_tiff(reader).map_err(decode_error)
        }
        _ => decode_image(&read_bytes(path)?).map_err(decode_error),
    }
}

/// Decode TIFF or PNG bytes; the error says why, for the caller to name the file.
/// (Separate from `read_image` so the fuzz targets can feed bytes directly.)
pub fn decode_image(bytes: &[u8]) -> std::result::Result<Image, String> {
    if bytes.starts_with(b"II") || bytes.starts_with(b"MM") {
        decode_tiff(Cursor::new(bytes))
    } else if bytes.starts_with(b"\x89PNG") {
        decode_png(bytes)
    } else {
        Err("only TIFF and PNG files are supported".into())
    }
}

/// Append the samples of one decoded page to `samples`, channel plane after channel plane
/// (interleaved samples are split as they are converted: no 32-bit copy of the page), and
/// return the pixel type they keep.
fn append_page(samples: &mut Vec<f32>, result: DecodingResult, spp: usize) -> std::result::Result<PixelType, String> {
    macro_rules! split {
        ($v:expr, $ty:expr, $conv:expr) => {{
            samples.reserve($v.len());
            for c in 0..spp {
                samples.extend($v.iter().skip(c).step_by(spp).map($conv));
            }
            $ty
        }};
    }
    Ok(match result {
        // A single 32-bit grayscale page already is the plane: take it, do not copy it.
        DecodingResult::F32(v) if spp == 1 && samples.is_empty() => {
            *samples = v;
            PixelType::F32
        }
        DecodingResult::U8(v) => split!(v, PixelType::U8, |&x| f32::from(x)),
        DecodingResult::U16(v) => split!(v, PixelType::U16, |&x| f32::from(x)),
        DecodingResult::F32(v) => split!(v, PixelType::F32, |&x| x),
        DecodingResult::I8(v) => split!(v, PixelType::F32, |&x| f32::from(x)),
        DecodingResult::I16(v) => split!(v, PixelType::F32, |&x| f32::from(x)),
        DecodingResult::U32(v) => split!(v, PixelType::F32, |&x| x as f32),
        DecodingResult::I32(v) => split!(v, PixelType::F32, |&x| x as f32),
        DecodingResult::F64(v) => split!(v, PixelType::F32, |&x| x as f32),
        _ => return Err("unsupported sample format (use 8-, 16- or 32-bit)".into()),
    })
}

fn samples_per_pixel(color: ColorType) -> std::result::Result<usize, String> {
    match color {
        ColorType::Gray(_) => Ok(1),
        ColorType::RGB(_) => Ok(3),
        ColorType::Multiband { num_samples, .. } => Ok(num_samples as usize),
        other => Err(format!("colour type {other:?} is not supported (use grayscale or RGB)")),
    }
}

/// ImageJ writes "key=value" lines into the ImageDescription tag.
fn imagej_field<'a>(description: &'a str, key: &str) -> Option<&'a str> {
    description.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

fn decode_tiff<R: std::io::Read + std::io::Seek>(reader: R) -> std::result::Result<Image, String> {
    let mut limits = Limits::default();
    limits.decoding_buffer_size = super::max_image_bytes() as usize;
    let mut dec = Decoder::new(reader).map_err(|e| e.to_string())?.with_limits(limits);
    let (width, height) = dec.dimensions().map_err(|e| e.to_string())?;
    let description = dec.get_tag_ascii_string(Tag::ImageDescription).ok().unwrap_or_default();
    let calibration = tiff_calibration(&mut dec, &description);

    let mut samples: Vec<f32> = Vec::new();
    let mut pixel_type = None;
    let mut samples_pp = 0;
    let mut pages = 0usize;
    loop {
        let (w, h) = dec.dimensions().map_err(|e| e.to_string())?;
        if (w, h) != (width, height) {
            return Err(format!("page {} is {w}×{h} but the first page is {width}×{height}", pages + 1));
        }
        let spp = samples_per_pixel(dec.colortype().map_err(|e| e.to_string())?)?;
        if pages > 0 && spp != samples_pp {
            return Err("pages have different numbers of channels".into());
        }
        samples_pp = spp;
        check_size(width as u64, height as u64, ((pages + 1) * spp) as u64).map_err(|e| e.to_string())?;
        let page = dec.read_image().map_err(|e| e.to_string())?;
        let before = samples.len();
        let ty = append_page(&mut samples, page, spp)?;
        if samples.len() - before != width as usize * height as usize * spp {
            return Err("page data is shorter than its declared size".into());
        }
        if pixel_type.is_some_and(|t| t != ty) {
            return Err("pages have different bit depths".into());
        }
        pixel_type = Some(ty);
        pages += 1;
        if !dec.more_images() {
            break;
        }
        dec.next_image().map_err(|e| e.to_string())?;
    }
    // ImageJ hyperstacks store channel planes as consecutive pages (channel fastest).
    let hyper_channels = imagej_field(&description, "channels").and_then(|c| c.parse::<usize>().ok());
    let (slices, channels) = match hyper_channels {
        Some(c) if samples_pp == 1 && c > 0 && pages.is_multiple_of(c) => (pages / c, c),
        _ => (pages, samples_pp),
    };
    let data = Array4::from_shape_vec((slices, channels, height as usize, width as usize), samples)
        .map_err(|e| e.to_string())?;
    Ok(Image { data, pixel_type: pixel_type.unwrap_or(PixelType::U8), calibration })
}

fn tiff_calibration<R: std::io::Read + std::io::Seek>(dec: &mut Decoder<R>, description: &str) -> Calibration {
    let Some(unit) = imagej_field(description, "unit") else { return Calibration::default() };
    let mut pixel_size = |tag| match dec.get_tag(tag) {
        Ok(tiff::decoder::ifd::Value::Rational(n, d)) if n > 0 && d > 0 => d as f64 / n as f64,
        _ => 1.0,
    };
    let pixel_width = pixel_size(Tag::XResolution);
    let pixel_height = pixel_size(Tag::YResolution);
    let unit = unit.replace("\\u00B5", "µ");
    Calibration { pixel_width, pixel_height, unit: if unit == "micron" { "µm".into() } else { unit } }
}

fn decode_png(bytes: &[u8]) -> std::result::Result<Image, String> {
    let reader = image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Png);
    let (w, h) = reader.into_dimensions().map_err(|e| e.to_string())?;
    check_size(w as u64, h as u64, 3).map_err(|e| e.to_string())?;
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).map_err(|e| e.to_string())?;
    use image::DynamicImage as D;
    let (channels, pixel_type, interleaved): (usize, PixelType, Vec<f32>) = match img {
        D::ImageLuma8(b) => (1, PixelType::U8, b.into_raw().into_iter().map(f32::from).collect()),
        D::ImageLumaA8(_) => (1, PixelType::U8, img.into_luma8().into_raw().into_iter().map(f32::from).collect()),
        D::ImageLuma16(b) => (1, PixelType::U16, b.into_raw().into_iter().map(f32::from).collect()),
        D::ImageLumaA16(_) => (1, PixelType::U16, img.into_luma16().into_raw().into_iter().map(f32::from).collect()),
        D::ImageRgb16(_) | D::ImageRgba16(_) => {
            (3, PixelType::U16, img.into_rgb16().into_raw().into_iter().map(f32::from).collect())
        }
        // Alpha carries no image content for registration; it is dropped.
        _ => (3, PixelType::U8, img.into_rgb8().into_raw().into_iter().map(f32::from).collect()),
    };
    let (w, h) = (w as usize, h as usize);
    let mut data = Array4::zeros((1, channels, h, w));
    for (i, v) in interleaved.into_iter().enumerate() {
        data[[0, i % channels, (i / channels) / w, (i / channels) % w]] = v;
    }
    Ok(Image { data, pixel_type, calibration: Calibration::default() })
}

/// Write an ImageJ-compatible TIFF: 3-channel 8-bit images as RGB pages, everything else as
/// one grayscale page per (slice, channel) with the hyperstack layout and calibration in
/// the description, so ImageJ/Fiji open it with channels and units intact.
pub fn write_tiff(path: &Path, image: &Image) -> Result<()> {
    let shape = PageShape { width: image.width(), height: image.height(), slices: image.slices(), channels: image.channels(), pixel_type: image.pixel_type };
    write_tiff_planes(path, shape, &image.calibration, &|z, c| Box::new(image.plane(z, c).into_iter().copied()))
}

/// What [`write_tiff_planes`] writes: plane size, count and sample type.
#[derive(Clone, Copy, Debug)]
pub struct PageShape {
    pub width: usize,
    pub height: usize,
    pub slices: usize,
    pub channels: usize,
    pub pixel_type: PixelType,
}

/// The samples of one plane, row by row (already in the range of the pixel type).
pub type PlaneSamples<'a> = Box<dyn Iterator<Item = f32> + 'a>;

/// Write an ImageJ TIFF whose planes come from `plane(slice, channel)` one page at a time,
/// each converted to its pixel type as it streams: a 20000² result (e.g. a warped image)
/// never exists as a 32-bit copy.
pub fn write_tiff_planes<'a>(path: &Path, shape: PageShape, cal: &Calibration, plane: &dyn Fn(usize, usize) -> PlaneSamples<'a>) -> Result<()> {
    let (w, h) = (shape.width as u32, shape.height as u32);
    let rgb = shape.channels == 3 && shape.pixel_type == PixelType::U8;
    let pages = if rgb { shape.slices } else { shape.slices * shape.channels };
    let mut description = format!("ImageJ=1.54f\nimages={pages}\n");
    if !rgb && shape.channels > 1 {
        description += &format!("channels={}\nslices={}\nhyperstack=true\nmode=grayscale\n", shape.channels, shape.slices);
    } else if pages > 1 {
        description += &format!("slices={pages}\n");
    }
    if cal.unit != "pixel" {
        description += &format!("unit={}\n", cal.unit.replace('µ', "\\u00B5"));
    }
    write_atomically(path, |out| {
        let mut enc = TiffEncoder::new(out)?;
        for z in 0..shape.slices {
            // RGB pages interleave the three channels; grayscale pages hold one plane each.
            for c in 0..if rgb { 1 } else { shape.channels } {
                let samples: PlaneSamples = if rgb {
                    let (r, g, b) = (plane(z, 0), plane(z, 1), plane(z, 2));
                    Box::new(r.zip(g).zip(b).flat_map(|((r, g), b)| [r, g, b]))
                } else {
                    plane(z, c)
                };
                // Strip by strip: only one strip of converted samples exists at a time.
                macro_rules! page {
                    ($ct:ty, $conv:expr) => {{
                        let mut samples = samples;
                        let mut page = enc.new_image::<$ct>(w, h)?;
                        page.encoder().write_tag(Tag::ImageDescription, description.as_str())?;
                        page.resolution(ResolutionUnit::None, rational(1.0 / cal.pixel_width));
                        page.y_resolution(rational(1.0 / cal.pixel_height));
                        loop {
                            let n = page.next_strip_sample_count() as usize;
                            if n == 0 {
                                break;
                            }
                            let strip: Vec<_> = samples.by_ref().take(n).map($conv).collect();
                            if strip.len() != n {
                                return Err("a plane has fewer samples than its size".into());
                            }
                            page.write_strip(&strip)?;
                        }
                        page.finish()?;
                    }};
                }
                match (shape.pixel_type, rgb) {
                    (PixelType::U8, true) => page!(colortype::RGB8, |v| v as u8),
                    (PixelType::U8, false) => page!(colortype::Gray8, |v| v as u8),
                    (PixelType::U16, _) => page!(colortype::Gray16, |v| v as u16),
                    (PixelType::F32, _) => page!(colortype::Gray32Float, |v| v),
                }
            }
        }
        Ok(())
    })
}

fn rational(per_unit: f64) -> Rational {
    let per_unit = if per_unit.is_finite() && per_unit > 0.0 { per_unit } else { 1.0 };
    let d = (u32::MAX as f64 / per_unit.max(1.0)).clamp(1.0, 1_000_000.0) as u32;
    Rational { n: (per_unit * d as f64).round().max(1.0) as u32, d }
}

/// Write by extension: .png gives an 8-bit preview, anything else a TIFF.
pub fn write_image(path: &Path, image: &Image) -> Result<()> {
    let is_png = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png { super::preview::write_preview_png(path, image) } else { write_tiff(path, image) }
}
