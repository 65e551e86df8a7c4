//! The field client's shrink of a camera photo before it is attached to a visit: turned upright, at most 1,600
//! pixels on its long side, re-encoded as JPEG without any metadata (no GPS, no camera serial), as Doorstep's
//! phones send photos. The server's bounds and bounded decode (`server::photos::check`) apply, so a photo that
//! shrinks here is one the server takes.

use chrono::{DateTime, FixedOffset, Local, NaiveDate, TimeZone, Utc};
use exif::{In, Tag, Value};
use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageResult};
use server::photos::check::{decode_within_bounds, what_it_is};
use std::io::Cursor;

/// The long side of a shrunk photo: enough to read a house number or a note on a door, about 300 KB.
pub const MAX_SIDE: u32 = 1_600;
/// Quality of the re-encoding: indistinguishable from the original at this size.
const QUALITY: u8 = 82;

/// A photo ready to attach.
#[derive(Debug, Clone)]
pub struct ShrunkPhoto {
    /// JPEG, without metadata.
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    /// When the camera took it (its EXIF), else the fallback given.
    pub taken_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
}

/// Shrinks a camera's JPEG, WebP or PNG photo; `taken_at_fallback` (e.g. the file's modification time) is used
/// when the photo does not say when it was taken.
pub fn shrink_photo(bytes: &[u8], taken_at_fallback: DateTime<Utc>) -> Result<ShrunkPhoto, String> {
    let read = if bytes.starts_with(b"\xFF\xD8\xFF") {
        read(JpegDecoder::new(Cursor::new(bytes)))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        read(PngDecoder::new(Cursor::new(bytes)))
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        match WebPDecoder::new(Cursor::new(bytes)) {
            Ok(decoder) if decoder.has_animation() => {
                return Err("this WebP file is an animation, not a photo: attach a single still picture".into())
            }
            decoder => read(decoder),
        }
    } else {
        return Err(format!(
            "this file is {}, not a photo: a camera's JPEG, WebP or PNG photo can be attached (judged by the \
             file's content, not its name)",
            what_it_is(bytes)
        ));
    };
    let Read { image, orientation, exif } = read?;
    let mut image = match image.width().max(image.height()) > MAX_SIDE {
        true => image.resize(MAX_SIDE, MAX_SIDE, FilterType::CatmullRom),
        false => image,
    };
    // Turned after resizing: the bound is the same on both sides, and there are fewer pixels to move.
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    let mut jpeg = Vec::new();
    // A fresh encoder writes only the JFIF header: none of the camera's metadata is carried over. Camera photos
    // have no transparency; a PNG's is dropped.
    DynamicImage::ImageRgb8(image.to_rgb8())
        .write_with_encoder(JpegEncoder::new_with_quality(&mut jpeg, QUALITY))
        .map_err(|e| format!("the photo could not be re-encoded: {e}"))?;
    Ok(ShrunkPhoto {
        bytes: jpeg,
        media_type: "image/jpeg",
        taken_at: exif.as_deref().and_then(taken_at).unwrap_or(taken_at_fallback),
        width,
        height,
    })
}

/// A decoded photo, how to turn it upright, and its EXIF (a TIFF structure).
struct Read {
    image: DynamicImage,
    orientation: Orientation,
    exif: Option<Vec<u8>>,
}

fn read(decoder: ImageResult<impl ImageDecoder>) -> Result<Read, String> {
    let damaged = |e: image::ImageError| format!("the photo could not be read: {e}: the file is damaged or incomplete");
    let mut decoder = decoder.map_err(damaged)?;
    // Unreadable metadata is no reason to refuse the pixels.
    let exif = decoder.exif_metadata().ok().flatten();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = decode_within_bounds(decoder).map_err(|refusal| refusal.to_string())?;
    Ok(Read { image, orientation, exif })
}

/// When the photo was taken, from the EXIF DateTimeOriginal. Cameras write it in local time, with the zone in
/// OffsetTimeOriginal if at all; without a zone the photo is taken to have been made in this computer's zone
/// (the volunteer's, the same day).
fn taken_at(exif: &[u8]) -> Option<DateTime<Utc>> {
    let exif = exif::Reader::new().read_raw(exif.to_vec()).ok()?;
    let ascii = |tag| match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(values) => values.first().cloned(),
        _ => None,
    };
    let mut when = exif::DateTime::from_ascii(&ascii(Tag::DateTimeOriginal)?).ok()?;
    if let Some(offset) = ascii(Tag::OffsetTimeOriginal) {
        // A malformed offset leaves the local time, as if there were none.
        let _ = when.parse_offset(&offset);
    }
    let local = NaiveDate::from_ymd_opt(i32::from(when.year), u32::from(when.month), u32::from(when.day))?
        .and_hms_opt(u32::from(when.hour), u32::from(when.minute), u32::from(when.second))?;
    let utc = match when.offset {
        Some(minutes) => FixedOffset::east_opt(i32::from(minutes) * 60)?.from_local_datetime(&local).single()?,
        None => Local.from_local_datetime(&local).earliest()?.fixed_offset(),
    };
    Some(utc.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use exif::experimental::Writer;
    use exif::{Field, Rational};
    use image::{ImageEncoder, Rgb, RgbImage};

    /// A photo-like picture with a red top-left corner, to see where that corner goes.
    fn picture(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            if x < width / 8 && y < height / 8 {
                return Rgb([230, 20, 20]);
            }
            let shade = ((x / 4 + y / 6) % 200) as u8;
            Rgb([40 + shade / 2, 60 + shade / 3, 90 + shade / 4])
        })
    }

    fn camera_jpeg(width: u32, height: u32, exif: Option<Vec<u8>>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut out, 95);
        if let Some(exif) = exif {
            encoder.set_exif_metadata(exif).unwrap();
        }
        encoder.write_image(picture(width, height).as_raw(), width, height, image::ExtendedColorType::Rgb8).unwrap();
        out
    }

    fn exif(fields: &[Field]) -> Vec<u8> {
        let mut writer = Writer::new();
        for field in fields {
            writer.push_field(field);
        }
        let mut out = Cursor::new(Vec::new());
        writer.write(&mut out, true).unwrap();
        out.into_inner()
    }

    fn ascii(tag: Tag, text: &str) -> Field {
        Field { tag, ifd_num: In::PRIMARY, value: Value::Ascii(vec![text.as_bytes().to_vec()]) }
    }

    fn fallback() -> DateTime<Utc> {
        "2026-03-01T09:00:00Z".parse().unwrap()
    }

    fn size_of(jpeg: &[u8]) -> (u32, u32) {
        let image = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).expect("a JPEG");
        (image.width(), image.height())
    }

    #[test]
    fn a_large_photo_becomes_1600_by_1200_under_400_kb() {
        let shrunk = shrink_photo(&camera_jpeg(4000, 3000, None), fallback()).unwrap();
        assert_eq!((shrunk.width, shrunk.height), (1600, 1200));
        assert_eq!(size_of(&shrunk.bytes), (1600, 1200));
        assert_eq!(shrunk.media_type, "image/jpeg");
        assert!(shrunk.bytes.len() < 400_000, "{} bytes", shrunk.bytes.len());
        assert_eq!(shrunk.taken_at, fallback(), "no EXIF: the fallback");
        // The server takes what the client sends, as it is.
        let checked = server::photos::check::check_photo(&shrunk.bytes).unwrap();
        assert_eq!(checked.stored, shrunk.bytes);
    }

    #[test]
    fn a_small_photo_keeps_its_size_and_png_and_webp_are_read() {
        let shrunk = shrink_photo(&camera_jpeg(800, 600, None), fallback()).unwrap();
        assert_eq!((shrunk.width, shrunk.height), (800, 600));
        assert_eq!(size_of(&shrunk.bytes), (800, 600));
        for format in [image::ImageFormat::Png, image::ImageFormat::WebP] {
            let mut encoded = Vec::new();
            DynamicImage::ImageRgb8(picture(640, 480)).write_to(&mut Cursor::new(&mut encoded), format).unwrap();
            let shrunk = shrink_photo(&encoded, fallback()).unwrap();
            assert_eq!(size_of(&shrunk.bytes), (640, 480), "{format:?}");
        }
    }

    #[test]
    fn an_orientation_6_photo_comes_out_turned() {
        let orientation = Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![6]) };
        let shrunk = shrink_photo(&camera_jpeg(2000, 1500, Some(exif(&[orientation]))), fallback()).unwrap();
        assert_eq!((shrunk.width, shrunk.height), (1200, 1600));
        // Orientation 6 is a quarter turn clockwise: the red top-left corner is now top-right.
        let upright = image::load_from_memory(&shrunk.bytes).unwrap().to_rgb8();
        assert!(upright.get_pixel(1190, 10)[0] > 200, "{:?}", upright.get_pixel(1190, 10));
        assert!(upright.get_pixel(10, 10)[0] < 150, "{:?}", upright.get_pixel(10, 10));
    }

    #[test]
    fn the_output_has_no_exif_and_takes_the_time_the_photo_was_taken() {
        let degrees = |d| Value::Rational(vec![Rational::from((d, 1)), (16, 1).into(), (4200, 100).into()]);
        let fields = [
            ascii(Tag::DateTimeOriginal, "2026:02:14 16:45:30"),
            ascii(Tag::OffsetTimeOriginal, "+08:00"),
            ascii(Tag::GPSLatitudeRef, "N"),
            Field { tag: Tag::GPSLatitude, ifd_num: In::PRIMARY, value: degrees(22) },
            ascii(Tag::Make, "Camera Maker"),
        ];
        let shrunk = shrink_photo(&camera_jpeg(1000, 750, Some(exif(&fields))), fallback()).unwrap();
        assert_eq!(shrunk.taken_at, "2026-02-14T08:45:30Z".parse::<DateTime<Utc>>().unwrap());
        for leak in [b"Exif\0\0".as_slice(), b"Camera Maker", b"2026:02:14"] {
            assert!(!shrunk.bytes.windows(leak.len()).any(|w| w == leak), "{:?} left", String::from_utf8_lossy(leak));
        }
        let mut decoder = JpegDecoder::new(Cursor::new(&shrunk.bytes)).unwrap();
        assert_eq!(decoder.exif_metadata().unwrap(), None);
        assert_eq!(decoder.xmp_metadata().unwrap(), None);
    }

    #[test]
    fn an_unusable_date_falls_back() {
        for date in ["0000:00:00 00:00:00", "2026:13:45 10:00:00", "yesterday"] {
            let photo = camera_jpeg(64, 48, Some(exif(&[ascii(Tag::DateTimeOriginal, date)])));
            assert_eq!(shrink_photo(&photo, fallback()).unwrap().taken_at, fallback(), "{date}");
        }
    }

    #[test]
    fn files_that_are_not_photos_are_refused_with_a_clear_message() {
        let refusal = shrink_photo(b"Visit notes: 12 Main St, nobody home\n", fallback()).unwrap_err();
        assert!(
            refusal.starts_with("this file is text, not a photo: a camera's JPEG, WebP or PNG photo can be attached"),
            "{refusal}"
        );
        let refusal = shrink_photo(b"%PDF-1.7\n", fallback()).unwrap_err();
        assert!(refusal.starts_with("this file is a PDF document, not a photo"), "{refusal}");
        let mut bomb = camera_jpeg(16, 16, None);
        let sof = bomb.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bomb[sof + 5..sof + 9].copy_from_slice(&[0xC3, 0x50, 0xC3, 0x50]);
        let refusal = shrink_photo(&bomb, fallback()).unwrap_err();
        assert!(refusal.starts_with("the photo is 50000×50000 pixels; at most 40 megapixels"), "{refusal}");
        let refusal = shrink_photo(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J'], fallback()).unwrap_err();
        assert!(refusal.ends_with("the file is damaged or incomplete"), "{refusal}");
    }
}
