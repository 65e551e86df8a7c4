//! The check of a photo a device uploads, before the server keeps it: judged by content (JPEG or WebP only),
//! bounded in pixels before anything is decoded, decoded once within a memory bound, stripped of its metadata
//! without touching the image data, and given a small JPEG thumbnail for the dashboard.
//!
//! Pure and synchronous (CPU-bound: callers run it on a blocking thread). The field client's shrink reuses the
//! bounds and the bounded decode (`decode_within_bounds`) so a photo it sends is one the server takes.

use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::codecs::webp::WebPDecoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, Limits, RgbImage};
use std::io::Cursor;

/// The most pixels a photo may have (a 40-megapixel camera's full resolution; phones send about 2).
pub const MAX_PHOTO_PIXELS: u64 = 40_000_000;
/// The longest side a photo may have, so a 1×40,000,000 strip is refused too.
pub const MAX_PHOTO_SIDE: u32 = 10_000;
/// What decoding one photo may allocate. 40 megapixels of RGBA are 160 MB: this leaves room for the decoder's
/// own buffers and nothing more.
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;
/// The thumbnail's long side, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// Good enough for a list of thumbnails, and a few kilobytes each.
const THUMBNAIL_QUALITY: u8 = 80;

/// A photo the server takes.
#[derive(Debug, Clone)]
pub struct CheckedPhoto {
    /// "image/jpeg" or "image/webp", from the content.
    pub media_type: &'static str,
    pub width: u32,
    pub height: u32,
    /// The bytes to keep: the received ones without their metadata (the same bytes when there was none).
    pub stored: Vec<u8>,
    /// A JPEG whose long side is `THUMBNAIL_SIDE` (or the photo's own, if smaller), upright.
    pub thumbnail: Vec<u8>,
    /// What was removed, e.g. "EXIF", "XMP", "comment"; empty when nothing was.
    pub stripped: Vec<&'static str>,
}

/// Why a photo was refused; each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoRefusal {
    #[error("this file is {0}, not a photo: photos are JPEG or WebP (judged by the file's content, not its name)")]
    NotAPhoto(&'static str),
    #[error(
        "the photo is {width}×{height} pixels; at most {mp} megapixels and {side} pixels a side are accepted: \
         shrink it first",
        mp = MAX_PHOTO_PIXELS / 1_000_000,
        side = MAX_PHOTO_SIDE
    )]
    TooLarge { width: u32, height: u32 },
    #[error("this WebP file is an animation, not a photo: send a single still picture")]
    Animated,
    #[error("the photo could not be decoded: {0}: the file is damaged or incomplete")]
    Undecodable(String),
}

/// Checks a received photo and prepares what the server keeps of it.
pub fn check_photo(bytes: &[u8]) -> Result<CheckedPhoto, PhotoRefusal> {
    let format = photo_format(bytes)?;
    // Walking the file's structure first also finds a truncated file, which a lenient decoder would fill in grey.
    let without_metadata = match format {
        Format::Jpeg => strip_jpeg(bytes)?,
        Format::WebP => strip_webp(bytes)?,
    };
    // What is decoded is what is stored: the thumbnail and the bounds hold for the kept bytes.
    let image = match format {
        Format::Jpeg => {
            decode_within_bounds(JpegDecoder::new(Cursor::new(&without_metadata.bytes)).map_err(undecodable)?)?
        }
        Format::WebP => {
            let decoder = WebPDecoder::new(Cursor::new(&without_metadata.bytes)).map_err(undecodable)?;
            if decoder.has_animation() {
                return Err(PhotoRefusal::Animated);
            }
            decode_within_bounds(decoder)?
        }
    };
    // The stored bytes keep the pixels as the camera wrote them and lose the EXIF orientation with the rest of the
    // EXIF: Doorstep's phones and the field client bake the orientation into the pixels before sending. A photo
    // from elsewhere that still relied on its orientation tag gets at least an upright thumbnail.
    let orientation = without_metadata.exif.as_deref().and_then(Orientation::from_exif_chunk);
    let (width, height) = (image.width(), image.height());
    let thumbnail = thumbnail_of(image, orientation.unwrap_or(Orientation::NoTransforms))?;
    Ok(CheckedPhoto {
        media_type: match format {
            Format::Jpeg => "image/jpeg",
            Format::WebP => "image/webp",
        },
        width,
        height,
        stored: without_metadata.bytes,
        thumbnail,
        stripped: without_metadata.stripped,
    })
}

/// The formats a photo may have.
enum Format {
    Jpeg,
    WebP,
}

/// The photo's format from its first bytes, or a refusal naming what the file is.
fn photo_format(bytes: &[u8]) -> Result<Format, PhotoRefusal> {
    if bytes.starts_with(b"\xFF\xD8\xFF") {
        Ok(Format::Jpeg)
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Ok(Format::WebP)
    } else {
        Err(PhotoRefusal::NotAPhoto(what_it_is(bytes)))
    }
}

/// What a file that is not a photo looks like, in words ("a PDF document"), for a refusal's message.
pub fn what_it_is(bytes: &[u8]) -> &'static str {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    // ISO media files (MP4, QuickTime, HEIC) name their brand after `ftyp` at offset 4.
    let iso_media = bytes.get(4..8) == Some(b"ftyp".as_slice());
    if bytes.is_empty() {
        "empty"
    } else if starts(b"\xFF\xD8\xFF") {
        "a JPEG image"
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        "a WebP image"
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        "a PNG image"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "a GIF image"
    } else if starts(b"%PDF-") {
        "a PDF document"
    } else if iso_media && matches!(bytes.get(8..12), Some(b"heic" | b"heix" | b"mif1" | b"avif")) {
        "a HEIC or AVIF image (set the camera to JPEG, or convert it to JPEG first)"
    } else if iso_media {
        "a video (MP4 or QuickTime)"
    } else if starts(b"BM") {
        "a BMP image"
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        "a TIFF image"
    } else if starts(b"PK\x03\x04") {
        "a ZIP archive"
    } else if std::str::from_utf8(&bytes[..bytes.len().min(1024)])
        .is_ok_and(|t| !t.chars().any(|c| c.is_control() && !c.is_whitespace()))
    {
        "text"
    } else {
        "of a type not recognised"
    }
}

/// Refuses dimensions past the bounds; read from a header, before any pixel is decoded.
pub fn check_dimensions(width: u32, height: u32) -> Result<(), PhotoRefusal> {
    let too_large =
        u64::from(width) * u64::from(height) > MAX_PHOTO_PIXELS || width > MAX_PHOTO_SIDE || height > MAX_PHOTO_SIDE;
    if too_large {
        return Err(PhotoRefusal::TooLarge { width, height });
    }
    if width == 0 || height == 0 {
        return Err(PhotoRefusal::Undecodable(format!("its header says it is {width}×{height} pixels")));
    }
    Ok(())
}

/// Decodes an image whose decoder has read only its header: the dimensions are checked first, and the decode
/// runs under `MAX_DECODE_BYTES`, so a small file claiming huge dimensions (a decompression bomb) costs nothing.
pub fn decode_within_bounds(mut decoder: impl ImageDecoder) -> Result<DynamicImage, PhotoRefusal> {
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    // `from_decoder` allocates the output before asking the decoder for anything, and only `max_alloc` of the
    // decoder's own buffers is bounded by the limits: so the output is bounded here.
    if decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(PhotoRefusal::TooLarge { width, height });
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_PHOTO_SIDE);
    limits.max_image_height = Some(MAX_PHOTO_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    decoder.set_limits(limits).map_err(undecodable)?;
    DynamicImage::from_decoder(decoder).map_err(undecodable)
}

fn undecodable(e: image::ImageError) -> PhotoRefusal {
    PhotoRefusal::Undecodable(e.to_string())
}

fn damaged(what: &str) -> PhotoRefusal {
    PhotoRefusal::Undecodable(what.to_string())
}

/// The thumbnail: averaged down to `THUMBNAIL_SIDE`, turned upright, encoded as JPEG. Most of the server's CPU for
/// a photo is its decode and this: hence the integer box average, reading each pixel once, before a filter on the
/// already small image finishes the job.
fn thumbnail_of(image: DynamicImage, orientation: Orientation) -> Result<Vec<u8>, PhotoRefusal> {
    // JPEG has no alpha: a WebP's transparency is dropped.
    let rgb = match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    };
    let factor = rgb.width().max(rgb.height()) / THUMBNAIL_SIDE;
    let boxed = match factor > 1 {
        true => box_average(&rgb, factor),
        false => rgb,
    };
    let mut small = DynamicImage::ImageRgb8(boxed);
    if small.width().max(small.height()) > THUMBNAIL_SIDE {
        small = small.resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, FilterType::Triangle);
    }
    small.apply_orientation(orientation);
    let mut jpeg = Vec::new();
    small
        .write_with_encoder(JpegEncoder::new_with_quality(&mut jpeg, THUMBNAIL_QUALITY))
        .map_err(|e| PhotoRefusal::Undecodable(format!("its thumbnail could not be made ({e})")))?;
    Ok(jpeg)
}

/// Each `factor`×`factor` block of pixels averaged into one (the last partial row and column of blocks dropped).
fn box_average(image: &RgbImage, factor: u32) -> RgbImage {
    let (width, height) = (image.width() / factor, image.height() / factor);
    let row_len = image.width() as usize * 3;
    let used = width as usize * factor as usize * 3;
    let block = factor as usize;
    let area = factor * factor;
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    let mut sums = vec![0u32; width as usize * 3];
    for rows in image.as_raw().chunks_exact(row_len * block).take(height as usize) {
        sums.fill(0);
        for row in rows.chunks_exact(row_len) {
            for (column, pixels) in row[..used].chunks_exact(block * 3).enumerate() {
                let sum = &mut sums[column * 3..column * 3 + 3];
                for pixel in pixels.chunks_exact(3) {
                    sum[0] += u32::from(pixel[0]);
                    sum[1] += u32::from(pixel[1]);
                    sum[2] += u32::from(pixel[2]);
                }
            }
        }
        // Rounded, not truncated: a flat colour stays exactly that colour.
        out.extend(sums.iter().map(|&sum| ((sum + area / 2) / area) as u8));
    }
    RgbImage::from_raw(width, height, out).expect("width × height × 3 values")
}

/// A photo's bytes without their metadata, what was removed, and the EXIF (a TIFF structure) that was there.
struct WithoutMetadata {
    bytes: Vec<u8>,
    stripped: Vec<&'static str>,
    exif: Option<Vec<u8>>,
}

impl WithoutMetadata {
    fn removed(&mut self, what: &'static str) {
        if !self.stripped.contains(&what) {
            self.stripped.push(what);
        }
    }
}

const TRAILING_DATA: &str = "data after the image";
const XMP_PREFIX: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const EXTENDED_XMP_PREFIX: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
const APP_NAMES: [&str; 16] = [
    "APP0", "APP1", "APP2", "APP3", "APP4", "APP5", "APP6", "APP7", "APP8", "APP9", "APP10", "APP11", "APP12", "APP13",
    "APP14", "APP15",
];

/// Copies a JPEG's segments but its metadata: APP1 (EXIF, XMP), APP13 (IPTC), APP2 other than the ICC profile,
/// APP3..APP15 but APP14 (Adobe's colour transform), COM, and anything after the end-of-image marker (cameras
/// append previews and maker data there). APP0 (JFIF), the ICC profile, the tables, the frame and every scan
/// with its entropy-coded data are copied byte for byte, so the image decodes exactly as before.
fn strip_jpeg(bytes: &[u8]) -> Result<WithoutMetadata, PhotoRefusal> {
    let mut result = WithoutMetadata { bytes: Vec::with_capacity(bytes.len()), stripped: Vec::new(), exif: None };
    result.bytes.extend_from_slice(&bytes[..2]);
    let mut at = 2;
    let mut scans = 0;
    loop {
        if at >= bytes.len() {
            return Err(damaged("it ends before its end-of-image marker"));
        }
        if bytes[at] != 0xFF {
            return Err(damaged("a segment does not start with a marker"));
        }
        // A marker may be preceded by fill bytes (0xFF).
        let mut marker_at = at + 1;
        while bytes.get(marker_at) == Some(&0xFF) {
            marker_at += 1;
        }
        let Some(&marker) = bytes.get(marker_at) else {
            return Err(damaged("it ends before its end-of-image marker"));
        };
        let after_marker = marker_at + 1;
        match marker {
            0xD9 if scans == 0 => return Err(damaged("it has no image data")),
            0xD9 => {
                result.bytes.extend_from_slice(&bytes[at..after_marker]);
                if after_marker < bytes.len() {
                    result.removed(TRAILING_DATA);
                }
                return Ok(result);
            }
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                result.bytes.extend_from_slice(&bytes[at..after_marker]);
                at = after_marker;
                continue;
            }
            0x00 | 0xD8 => return Err(damaged("it has a misplaced marker")),
            _ => {}
        }
        let Some(length) = bytes.get(after_marker..after_marker + 2) else {
            return Err(damaged("it ends inside a segment"));
        };
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        let end = after_marker + length;
        if length < 2 || end > bytes.len() {
            return Err(damaged("it ends inside a segment"));
        }
        let payload = &bytes[after_marker + 2..end];
        let metadata = match marker {
            0xE1 if payload.starts_with(b"Exif\0\0") => {
                // The first EXIF segment is the one readers (and the orientation) use.
                result.exif.get_or_insert_with(|| payload[6..].to_vec());
                Some("EXIF")
            }
            0xE1 if payload.starts_with(XMP_PREFIX) || payload.starts_with(EXTENDED_XMP_PREFIX) => Some("XMP"),
            0xE2 if payload.starts_with(b"ICC_PROFILE\0") => None,
            0xED => Some("IPTC"),
            0xEE => None,
            0xE1..=0xEF => Some(APP_NAMES[usize::from(marker - 0xE0)]),
            0xFE => Some("comment"),
            _ => None,
        };
        match metadata {
            Some(what) => result.removed(what),
            None => result.bytes.extend_from_slice(&bytes[at..end]),
        }
        at = end;
        if marker == 0xDA {
            scans += 1;
            let scan_end = entropy_coded_end(bytes, at)?;
            result.bytes.extend_from_slice(&bytes[at..scan_end]);
            at = scan_end;
        }
    }
}

/// Where a scan's entropy-coded data ends: at the first marker that is neither a stuffed zero (0xFF00) nor a
/// restart marker.
fn entropy_coded_end(bytes: &[u8], from: usize) -> Result<usize, PhotoRefusal> {
    let mut at = from;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == 0xFF) {
        let ff = at + offset;
        match bytes.get(ff + 1) {
            Some(0x00 | 0xD0..=0xD7) => at = ff + 2,
            Some(_) => return Ok(ff),
            None => break,
        }
    }
    Err(damaged("it ends inside its image data"))
}

/// Flags of the VP8X chunk's first byte saying EXIF and XMP chunks follow.
const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;

/// Copies a WebP's chunks but EXIF and XMP (clearing their flags in VP8X; the ICC profile stays), and drops
/// anything after the RIFF container.
fn strip_webp(bytes: &[u8]) -> Result<WithoutMetadata, PhotoRefusal> {
    let mut result = WithoutMetadata { bytes: Vec::with_capacity(bytes.len()), stripped: Vec::new(), exif: None };
    let Some(riff_size) = bytes.get(4..8) else {
        return Err(damaged("it ends inside its header"));
    };
    let riff_end = 8 + u32::from_le_bytes(riff_size.try_into().expect("four bytes")) as usize;
    if riff_end > bytes.len() {
        return Err(damaged("it is shorter than its header says"));
    }
    if riff_end < bytes.len() {
        result.removed(TRAILING_DATA);
    }
    result.bytes.extend_from_slice(&bytes[..12]);
    let mut vp8x_at = None;
    let mut at = 12;
    while at < riff_end {
        let Some(header) = bytes.get(at..at + 8).filter(|_| at + 8 <= riff_end) else {
            return Err(damaged("it ends inside a chunk"));
        };
        let size = u32::from_le_bytes(header[4..8].try_into().expect("four bytes")) as usize;
        let data_end = at + 8 + size;
        if data_end > riff_end {
            return Err(damaged("it ends inside a chunk"));
        }
        // Chunks are padded to an even size; a missing final pad byte is tolerated, as decoders do.
        let chunk_end = (data_end + (size & 1)).min(riff_end);
        match &header[..4] {
            b"EXIF" => {
                let exif = &bytes[at + 8..data_end];
                // Some writers keep the JPEG segment's "Exif\0\0" prefix.
                let exif = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
                result.exif.get_or_insert_with(|| exif.to_vec());
                result.removed("EXIF");
            }
            b"XMP " => result.removed("XMP"),
            fourcc => {
                if fourcc == b"VP8X" && size > 0 {
                    vp8x_at = Some(result.bytes.len() + 8);
                }
                result.bytes.extend_from_slice(&bytes[at..chunk_end]);
            }
        }
        at = chunk_end;
    }
    if let Some(flags) = vp8x_at {
        result.bytes[flags] &= !(VP8X_EXIF | VP8X_XMP);
    }
    let riff_size = u32::try_from(result.bytes.len() - 8).expect("smaller than the received file");
    result.bytes[4..8].copy_from_slice(&riff_size.to_le_bytes());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use exif::experimental::Writer;
    use exif::{Field, In, Rational, Tag, Value};
    use image::codecs::webp::WebPEncoder;
    use image::ImageEncoder;
    use std::time::{Duration, Instant};

    /// A photo-like picture: gradients and texture, so that it compresses like a photo and not like a flat colour.
    fn picture(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let texture = ((x * 7 + y * 13) ^ (x * y)) % 32;
            image::Rgb([(x % 256) as u8, (y % 256) as u8, (((x + y) / 8 % 224) + texture) as u8])
        })
    }

    fn jpeg(width: u32, height: u32, exif: Option<Vec<u8>>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut out, 85);
        if let Some(exif) = exif {
            encoder.set_exif_metadata(exif).unwrap();
        }
        encoder.write_image(picture(width, height).as_raw(), width, height, image::ExtendedColorType::Rgb8).unwrap();
        out
    }

    fn webp(width: u32, height: u32, exif: Option<Vec<u8>>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = WebPEncoder::new_lossless(&mut out);
        if let Some(exif) = exif {
            encoder.set_exif_metadata(exif).unwrap();
        }
        encoder.write_image(picture(width, height).as_raw(), width, height, image::ExtendedColorType::Rgb8).unwrap();
        out
    }

    /// EXIF as a phone writes it: where it was taken, and optionally how to turn it.
    fn exif_with_gps(orientation: Option<u16>) -> Vec<u8> {
        let degrees = |d, m, s| Value::Rational(vec![Rational::from((d, 1)), (m, 1).into(), (s, 100).into()]);
        let mut fields = vec![
            Field { tag: Tag::GPSLatitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"N".to_vec()]) },
            Field { tag: Tag::GPSLatitude, ifd_num: In::PRIMARY, value: degrees(22, 16, 4200) },
            Field { tag: Tag::GPSLongitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"E".to_vec()]) },
            Field { tag: Tag::GPSLongitude, ifd_num: In::PRIMARY, value: degrees(114, 10, 1800) },
        ];
        if let Some(o) = orientation {
            fields.push(Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![o]) });
        }
        let mut writer = Writer::new();
        for field in &fields {
            writer.push_field(field);
        }
        let mut out = Cursor::new(Vec::new());
        writer.write(&mut out, false).unwrap();
        out.into_inner()
    }

    /// Inserts a JPEG segment right after SOI and JFIF's APP0.
    fn with_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
        let app0_end = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
        let mut out = jpeg[..app0_end].to_vec();
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(&jpeg[app0_end..]);
        out
    }

    fn decoded(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory(bytes).expect("decodes")
    }

    #[test]
    fn a_phone_jpeg_is_taken_as_it_is_with_a_thumbnail() {
        let photo = jpeg(1600, 1200, None);
        let checked = check_photo(&photo).unwrap();
        assert_eq!((checked.media_type, checked.width, checked.height), ("image/jpeg", 1600, 1200));
        assert_eq!(checked.stored, photo, "nothing to strip: the same bytes");
        assert!(checked.stripped.is_empty());
        assert!(checked.thumbnail.starts_with(b"\xFF\xD8\xFF"));
        let thumbnail = decoded(&checked.thumbnail);
        assert_eq!((thumbnail.width(), thumbnail.height()), (320, 240));
        assert!(checked.thumbnail.len() < 40_000, "a thumbnail of {} bytes", checked.thumbnail.len());
    }

    #[test]
    fn gps_exif_xmp_and_comments_are_stripped_and_the_image_data_is_untouched() {
        let plain = jpeg(1600, 1200, None);
        let with_exif = jpeg(1600, 1200, Some(exif_with_gps(None)));
        let xmp = [XMP_PREFIX, b"<x:xmpmeta>GPS 22.27N</x:xmpmeta>".as_slice()].concat();
        let tagged = with_segment(&with_segment(&with_exif, 0xE1, &xmp), 0xFE, b"taken at 12 Main St");
        let tagged = with_segment(&tagged, 0xED, b"Photoshop 3.0\0IPTC");
        assert!(tagged.windows(6).any(|w| w == b"Exif\0\0"));
        let checked = check_photo(&tagged).unwrap();
        assert_eq!(checked.stripped, ["IPTC", "comment", "XMP", "EXIF"]);
        assert_eq!(checked.stored, plain, "the image data and the JFIF segment are copied byte for byte");
        for leak in [b"Exif\0\0".as_slice(), b"Main St", b"xmpmeta", b"IPTC"] {
            assert!(!checked.stored.windows(leak.len()).any(|w| w == leak), "{:?} left", String::from_utf8_lossy(leak));
        }
        let stored = decoded(&checked.stored);
        assert_eq!((stored.width(), stored.height()), (1600, 1200));
        assert_eq!(stored, decoded(&tagged), "the same pixels");
    }

    #[test]
    fn the_icc_profile_and_adobe_segment_stay_and_trailing_data_goes() {
        let plain = jpeg(64, 48, None);
        let kept = with_segment(
            &with_segment(&plain, 0xE2, b"ICC_PROFILE\0\x01\x01profile"),
            0xEE,
            b"Adobe\0\x64\0\0\0\0\x01",
        );
        let mut sent = with_segment(&kept, 0xE2, b"MPF\0II*\0");
        sent.extend_from_slice(b"\xFF\xD8 a camera's preview");
        let checked = check_photo(&sent).unwrap();
        assert_eq!(checked.stored, kept);
        assert_eq!(checked.stripped, ["APP2", "data after the image"]);
    }

    #[test]
    fn an_orientation_turns_the_thumbnail_but_not_the_stored_photo() {
        let photo = jpeg(1600, 1200, Some(exif_with_gps(Some(6))));
        let checked = check_photo(&photo).unwrap();
        assert_eq!((checked.width, checked.height), (1600, 1200));
        let stored = decoded(&checked.stored);
        assert_eq!((stored.width(), stored.height()), (1600, 1200));
        let thumbnail = decoded(&checked.thumbnail);
        assert_eq!((thumbnail.width(), thumbnail.height()), (240, 320), "upright: turned a quarter");
    }

    #[test]
    fn a_webp_is_taken_and_its_exif_chunk_and_flag_removed() {
        let photo = webp(800, 600, Some(exif_with_gps(None)));
        assert!(photo.windows(4).any(|w| w == b"EXIF"));
        let checked = check_photo(&photo).unwrap();
        assert_eq!((checked.media_type, checked.width, checked.height), ("image/webp", 800, 600));
        assert_eq!(checked.stripped, ["EXIF"]);
        assert!(!checked.stored.windows(4).any(|w| w == b"EXIF"));
        let flags = checked.stored.windows(4).position(|w| w == b"VP8X").map(|at| checked.stored[at + 8]);
        assert_eq!(flags.map(|f| f & VP8X_EXIF), Some(0), "VP8X no longer announces EXIF");
        let riff_size = u32::from_le_bytes(checked.stored[4..8].try_into().unwrap()) as usize;
        assert_eq!(riff_size + 8, checked.stored.len());
        assert_eq!(decoded(&checked.stored), decoded(&photo), "the same pixels");
        let thumbnail = decoded(&checked.thumbnail);
        assert_eq!((thumbnail.width(), thumbnail.height()), (320, 240));
        let plain = webp(800, 600, None);
        assert_eq!(check_photo(&plain).unwrap().stored, plain);
    }

    #[test]
    fn the_box_average_keeps_flat_colours_and_averages_blocks() {
        let flat = RgbImage::from_pixel(1000, 700, image::Rgb([200, 100, 7]));
        let small = box_average(&flat, 3);
        assert_eq!(small.dimensions(), (333, 233));
        assert!(small.pixels().all(|p| p.0 == [200, 100, 7]));
        let checker = RgbImage::from_fn(4, 2, |x, y| image::Rgb([if (x + y) % 2 == 0 { 255 } else { 0 }, 10, 0]));
        assert_eq!(box_average(&checker, 2).into_raw(), [128, 10, 0, 128, 10, 0]);
    }

    #[test]
    fn other_files_are_refused_naming_what_they_are() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x06\x40\0\0\x04\xb0\x08\x02\0\0\0";
        let cases: [(&[u8], &str); 4] = [
            (png, "this file is a PNG image, not a photo: photos are JPEG or WebP"),
            (b"%PDF-1.7\n1 0 obj", "this file is a PDF document, not a photo: photos are JPEG or WebP"),
            (b"IMG_0042.jpg is not really a photo\n", "this file is text, not a photo"),
            (b"", "this file is empty, not a photo"),
        ];
        for (bytes, message) in cases {
            let refusal = check_photo(bytes).unwrap_err();
            assert!(refusal.to_string().starts_with(message), "{refusal}");
        }
    }

    #[test]
    fn a_header_claiming_a_huge_image_is_refused_before_decoding() {
        let mut bomb = jpeg(16, 16, None);
        let sof = bomb.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame header");
        bomb[sof + 5..sof + 9].copy_from_slice(&[0xC3, 0x50, 0xC3, 0x50]);
        let started = Instant::now();
        let refusal = check_photo(&bomb).unwrap_err();
        assert_eq!(refusal, PhotoRefusal::TooLarge { width: 50_000, height: 50_000 });
        assert!(started.elapsed() < Duration::from_millis(200), "took {:?}", started.elapsed());
        assert_eq!(
            refusal.to_string(),
            "the photo is 50000×50000 pixels; at most 40 megapixels and 10000 pixels a side are accepted: \
             shrink it first"
        );
        assert!(matches!(check_dimensions(10_001, 10), Err(PhotoRefusal::TooLarge { .. })));
        assert!(matches!(check_dimensions(8_000, 6_000), Err(PhotoRefusal::TooLarge { .. })), "48 megapixels");
        assert_eq!(check_dimensions(7_000, 5_000), Ok(()));
    }

    #[test]
    fn truncated_and_damaged_files_are_refused() {
        let photo = jpeg(400, 300, None);
        for cut in [photo.len() - 2, photo.len() / 2, 40, 3] {
            let refusal = check_photo(&photo[..cut]).unwrap_err();
            assert!(matches!(refusal, PhotoRefusal::Undecodable(_)), "cut at {cut}: {refusal}");
            assert!(refusal.to_string().ends_with("the file is damaged or incomplete"), "{refusal}");
        }
        let webp = webp(64, 48, None);
        assert!(matches!(check_photo(&webp[..webp.len() - 10]), Err(PhotoRefusal::Undecodable(_))));
        let mut scrambled = photo.clone();
        let sof = scrambled.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        scrambled[sof + 9] = 7; // seven colour components
        assert!(matches!(check_photo(&scrambled), Err(PhotoRefusal::Undecodable(_))));
    }
}
