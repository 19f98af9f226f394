//! The bay camera: frame sources, AR registration and the live overlay (feature `camera`).
//!
//! - [`FrameSource`]: one trait over every camera. [`open`] picks the source from the configured
//!   address:
//!   - `v4l2:N` or `/dev/videoN`: a V4L2/USB camera through `nokhwa`;
//!   - `rtsp://…`, `http://…`, `https://…` or a video file: OpenCV `videoio` (FFmpeg), which is
//!     also how the simulated camera of `scanner-sim` (MJPEG over HTTP) is read.
//! - [`register`]: finds the container's side face in a frame and the homography from the scan's
//!   coordinates to the frame.
//! - [`live`]: the loop that reads frames (reopening a lost camera with backoff), registers them,
//!   warps the scan's layers onto them, reads the container code, and publishes the result for
//!   the tablet page and the overlay stream.

pub mod code_loop;
pub mod live;
pub mod register;

use std::time::Instant;

use opencv::core::{Mat, Vector};
use opencv::prelude::*;
use opencv::{imgproc, videoio};
use thiserror::Error;

/// One camera frame, RGB, row-major.
#[derive(Debug, Clone)]
pub struct Frame {
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
    /// Width (pixels).
    pub width: u32,
    /// Height (pixels).
    pub height: u32,
    /// When it was read.
    pub at: Instant,
}

/// Why a camera gave no frame.
#[derive(Debug, Error)]
pub enum CameraError {
    /// The camera is not there (unplugged, wrong address, stream down).
    #[error("camera {source_name} is not available: {reason}")]
    Unavailable {
        /// The configured address.
        source_name: String,
        /// What the driver said.
        reason: String,
    },
    /// The camera was there and stopped giving frames.
    #[error("camera {source_name} stopped giving frames: {reason}")]
    Lost {
        /// The configured address.
        source_name: String,
        /// What the driver said.
        reason: String,
    },
}

/// A camera: blocking reads of the next frame. Sources are opened and read on the camera thread
/// (a V4L2 handle may not move between threads), so the trait does not require `Send`.
pub trait FrameSource {
    /// The address it was opened from.
    fn name(&self) -> &str;
    /// The next frame. An error means the source is gone: drop it and [`open`] it again.
    fn next_frame(&mut self) -> Result<Frame, CameraError>;
}

/// Opens the camera at `address` (see the module docs for the forms).
pub fn open(address: &str) -> Result<Box<dyn FrameSource>, CameraError> {
    let device = address
        .strip_prefix("v4l2:")
        .or_else(|| address.strip_prefix("/dev/video"));
    match device {
        Some(n) => {
            let index: u32 = n.parse().map_err(|_| CameraError::Unavailable {
                source_name: crate::config::redact_address(address),
                reason: format!("{n:?} is not a device number"),
            })?;
            Ok(Box::new(NokhwaSource::open(address, index)?))
        }
        None => Ok(Box::new(OpenCvSource::open(address)?)),
    }
}

/// RTSP and HTTP cameras and video files, through OpenCV `videoio`.
#[derive(Debug)]
pub struct OpenCvSource {
    name: String,
    capture: videoio::VideoCapture,
    bgr: Mat,
    rgb: Mat,
}

impl OpenCvSource {
    /// Opens `address` with whatever backend OpenCV picks (FFmpeg for streams and files).
    pub fn open(address: &str) -> Result<Self, CameraError> {
        let unavailable = |reason: String| CameraError::Unavailable {
            source_name: crate::config::redact_address(address),
            reason: crate::config::scrub_password(&reason, address),
        };
        // A dead address or a stalled stream must fail within seconds, not hang the loop.
        let params = Vector::<i32>::from_slice(&[
            videoio::CAP_PROP_OPEN_TIMEOUT_MSEC,
            5000,
            videoio::CAP_PROP_READ_TIMEOUT_MSEC,
            5000,
        ]);
        let capture =
            videoio::VideoCapture::from_file_with_params(address, videoio::CAP_ANY, &params)
                .map_err(|e| unavailable(e.to_string()))?;
        if !capture
            .is_opened()
            .map_err(|e| unavailable(e.to_string()))?
        {
            return Err(unavailable(
                "OpenCV could not open it (no such file, host down or not a video stream)".into(),
            ));
        }
        Ok(Self {
            name: crate::config::redact_address(address),
            capture,
            bgr: Mat::default(),
            rgb: Mat::default(),
        })
    }
}

impl FrameSource for OpenCvSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        let lost = |reason: String| CameraError::Lost {
            source_name: self.name.clone(),
            reason,
        };
        let got = self
            .capture
            .read(&mut self.bgr)
            .map_err(|e| lost(e.to_string()))?;
        if !got || self.bgr.empty() {
            return Err(lost("no frame (stream ended or connection dropped)".into()));
        }
        imgproc::cvt_color_def(&self.bgr, &mut self.rgb, imgproc::COLOR_BGR2RGB)
            .map_err(|e| lost(e.to_string()))?;
        let size = self.rgb.size().map_err(|e| lost(e.to_string()))?;
        let bytes = self.rgb.data_bytes().map_err(|e| lost(e.to_string()))?;
        Ok(Frame {
            rgb: bytes.to_vec(),
            width: size.width as u32,
            height: size.height as u32,
            at: Instant::now(),
        })
    }
}

/// V4L2 and USB cameras, through `nokhwa`.
pub struct NokhwaSource {
    name: String,
    camera: nokhwa::Camera,
}

impl std::fmt::Debug for NokhwaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NokhwaSource")
            .field("name", &self.name)
            .finish()
    }
}

impl NokhwaSource {
    /// Opens device `index` at its highest frame rate.
    pub fn open(address: &str, index: u32) -> Result<Self, CameraError> {
        use nokhwa::utils::{CameraIndex, RequestedFormat, RequestedFormatType};
        let unavailable = |reason: String| CameraError::Unavailable {
            source_name: crate::config::redact_address(address),
            reason: crate::config::scrub_password(&reason, address),
        };
        let format = RequestedFormat::new::<nokhwa::pixel_format::RgbFormat>(
            RequestedFormatType::AbsoluteHighestFrameRate,
        );
        let mut camera = nokhwa::Camera::new(CameraIndex::Index(index), format)
            .map_err(|e| unavailable(e.to_string()))?;
        camera
            .open_stream()
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(Self {
            name: crate::config::redact_address(address),
            camera,
        })
    }
}

impl FrameSource for NokhwaSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        let lost = |reason: String| CameraError::Lost {
            source_name: self.name.clone(),
            reason,
        };
        let buffer = self.camera.frame().map_err(|e| lost(e.to_string()))?;
        let img = buffer
            .decode_image::<nokhwa::pixel_format::RgbFormat>()
            .map_err(|e| lost(e.to_string()))?;
        Ok(Frame {
            width: img.width(),
            height: img.height(),
            rgb: img.into_raw(),
            at: Instant::now(),
        })
    }
}

/// An RGB frame as an OpenCV matrix (BGR, as OpenCV expects).
pub fn to_bgr_mat(rgb: &[u8], width: u32, height: u32) -> opencv::Result<Mat> {
    let mut m = Mat::new_rows_cols_with_default(
        height as i32,
        width as i32,
        opencv::core::CV_8UC3,
        opencv::core::Scalar::all(0.0),
    )?;
    m.data_bytes_mut()?.copy_from_slice(rgb);
    let mut bgr = Mat::default();
    imgproc::cvt_color_def(&m, &mut bgr, imgproc::COLOR_RGB2BGR)?;
    Ok(bgr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_camera_is_a_clear_error_not_a_panic() {
        for address in ["v4l2:7", "/dev/video9", "/nonexistent/bay.mp4", "v4l2:x"] {
            let Err(e) = open(address) else {
                panic!("{address} opened");
            };
            let text = e.to_string();
            assert!(
                text.contains(address) && text.contains("not available"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_video_file_is_read_frame_by_frame_and_its_end_is_a_lost_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bay.avi");
        let path_str = path.to_str().unwrap();
        let fourcc = videoio::VideoWriter::fourcc('M', 'J', 'P', 'G').unwrap();
        let mut writer = videoio::VideoWriter::new(
            path_str,
            fourcc,
            5.0,
            opencv::core::Size::new(320, 240),
            true,
        )
        .unwrap();
        for k in 0..4u8 {
            let rgb = vec![k * 60; 320 * 240 * 3];
            let frame = to_bgr_mat(&rgb, 320, 240).unwrap();
            writer.write(&frame).unwrap();
        }
        writer.release().unwrap();
        let mut source = open(path_str).unwrap();
        assert_eq!(source.name(), path_str);
        let mut frames = 0;
        let err = loop {
            match source.next_frame() {
                Ok(f) => {
                    assert_eq!((f.width, f.height, f.rgb.len()), (320, 240, 320 * 240 * 3));
                    frames += 1;
                }
                Err(e) => break e,
            }
        };
        assert_eq!(frames, 4);
        assert!(matches!(err, CameraError::Lost { .. }), "{err}");
    }
}
