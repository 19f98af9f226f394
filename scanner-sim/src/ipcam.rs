//! A simulated IP camera: MJPEG over HTTP (`multipart/x-mixed-replace`), the way most bay IP
//! cameras serve their stream, so the agent reads it through the same OpenCV `videoio` path as a
//! real one.
//!
//! - `GET /stream.mjpg`: the live stream, `fps` frames a second.
//! - `GET /snapshot.jpg`: one frame.
//!
//! The camera shows the side of the container currently in the bay ([`IpCamera::show`]), from a
//! fixed pose per container with a pixel or two of shake between frames, or the empty bay.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use baylens_protocol::ContainerCode;
use image::RgbImage;
use rand::{Rng, SeedableRng};

use crate::ContainerType;
use crate::camera::{self, CameraOptions, View};

/// Frames rendered per container (the stream cycles through them).
const POSES: usize = 6;

/// The camera's current picture: JPEG frames to cycle through.
#[derive(Debug, Default)]
pub struct IpCamera {
    frames: RwLock<Arc<Vec<Vec<u8>>>>,
    options: CameraOptions,
}

fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    enc.encode_image(img)
        .expect("encoding into memory does not fail");
    out
}

impl IpCamera {
    /// A camera at `width x height` showing the empty bay.
    pub fn new(width: u32, height: u32) -> Arc<Self> {
        let cam = Arc::new(Self {
            frames: RwLock::default(),
            options: CameraOptions {
                width,
                height,
                difficulty: 0.5,
                vertical_share: 0.0,
            },
        });
        cam.show(None);
        cam
    }

    /// Shows a container (or, with `None`, the empty bay). `seed` fixes the camera pose.
    pub fn show(&self, container: Option<(&ContainerCode, ContainerType, u64)>) {
        let frames: Vec<Vec<u8>> = match container {
            Some((code, kind, seed)) => (0..POSES)
                .map(|k| {
                    // Same pose for every frame (same seed), then a shake of a pixel or two.
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                    let f = camera::render(View::Side, kind, code, &self.options, &mut rng);
                    let mut shake = rand::rngs::StdRng::seed_from_u64(seed ^ k as u64);
                    let (dx, dy) = (shake.random_range(-2i64..=2), shake.random_range(-1i64..=1));
                    let mut img = RgbImage::new(f.image.width(), f.image.height());
                    image::imageops::overlay(&mut img, &f.image, dx, dy);
                    jpeg(&img)
                })
                .collect(),
            None => {
                let img = RgbImage::from_fn(self.options.width, self.options.height, |_, y| {
                    if y < self.options.height / 3 {
                        image::Rgb([170, 180, 190])
                    } else {
                        image::Rgb([110, 110, 110])
                    }
                });
                vec![jpeg(&img)]
            }
        };
        if let Ok(mut slot) = self.frames.write() {
            *slot = Arc::new(frames);
        }
    }

    fn frames(&self) -> Arc<Vec<Vec<u8>>> {
        self.frames.read().map(|f| f.clone()).unwrap_or_default()
    }
}

/// Serves the camera on `listener` until the process ends; one thread per client.
pub fn serve(listener: TcpListener, camera: Arc<IpCamera>, fps: f64) {
    serve_until(listener, camera, fps, &Arc::new(AtomicBool::new(false)));
}

/// Serves until `stop` is set; then the listener closes and every client's stream ends, as when
/// a camera loses power (tests use it to pull the camera out from under the agent).
pub fn serve_until(listener: TcpListener, camera: Arc<IpCamera>, fps: f64, stop: &Arc<AtomicBool>) {
    let period = Duration::from_secs_f64(1.0 / fps.max(0.1));
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let camera = camera.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let _ = client(stream, &camera, period, &stop);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn client(
    mut stream: TcpStream,
    camera: &IpCamera,
    period: Duration,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Skip the headers.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    match path {
        "/snapshot.jpg" => {
            let frames = camera.frames();
            let f = &frames[0];
            write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                f.len()
            )?;
            stream.write_all(f)
        }
        "/stream.mjpg" => {
            stream.write_all(
                b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
            )?;
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let frames = camera.frames();
                let f = &frames[k % frames.len()];
                write!(
                    stream,
                    "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    f.len()
                )?;
                stream.write_all(f)?;
                stream.write_all(b"\r\n")?;
                stream.flush()?;
                k += 1;
                std::thread::sleep(period);
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
            Ok(())
        }
        _ => stream.write_all(
            b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nonly /stream.mjpg and /snapshot.jpg\n",
        ),
    }
}
