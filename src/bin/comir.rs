//! `comir`: the command-line tool over the library. One subcommand per job.
use clap::{Parser, Subcommand};
use comir::image::io::{read_image, write_image};
use comir::image::preview::write_preview_png;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "comir", version, about = "Multimodal image registration with CoMIR")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resample an image through a transform file (fixed → moving, as written by registration).
    Apply {
        /// Transform JSON (format "comir-transform").
        #[arg(long)]
        transform: PathBuf,
        /// Image to warp (TIFF or PNG): the moving image.
        #[arg(long)]
        input: PathBuf,
        /// Output image; .tif keeps the pixel type, .png writes an 8-bit preview.
        #[arg(long)]
        output: PathBuf,
        /// Output size WIDTHxHEIGHT (default: the fixed size in the transform file, else the input size).
        #[arg(long, value_parser = parse_size)]
        size: Option<(usize, usize)>,
        /// Also write an 8-bit PNG preview of the result here.
        #[arg(long)]
        preview: Option<PathBuf>,
    },
    /// Print versions and devices, and check that libtorch computes.
    Info,
}

fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or("expected WIDTHxHEIGHT, e.g. 512x512")?;
    let parse = |v: &str| v.trim().parse::<usize>().map_err(|_| format!("'{v}' is not a whole number"));
    let (w, h) = (parse(w)?, parse(h)?);
    if w == 0 || h == 0 {
        return Err("width and height must be positive".into());
    }
    Ok((w, h))
}

fn run(cli: Cli) -> comir::Result<()> {
    match cli.command {
        Command::Apply { transform, input, output, size, preview } => {
            if output == input {
                return Err(comir::Error::Argument("the output must not overwrite the input image".into()));
            }
            let transform = comir::TransformFile::read(&transform)?;
            let image = read_image(&input)?;
            let warped = comir::apply_transform(&image, &transform, size)?;
            write_image(&output, &warped)?;
            if let Some(preview) = preview {
                write_preview_png(&preview, &warped)?;
            }
            eprintln!(
                "wrote {} ({}×{}, {} channel(s), {} slice(s))",
                output.display(),
                warped.width(),
                warped.height(),
                warped.channels(),
                warped.slices()
            );
            Ok(())
        }
        Command::Info => {
            let sum = comir::model::device::conv2d_smoke(tch::Device::Cpu)?;
            println!("{}", comir::model::device::runtime_info());
            println!("conv2d check: {sum} (expected 36)");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
