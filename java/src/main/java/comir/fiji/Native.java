package comir.fiji;

import java.io.File;
import java.net.URL;
import java.util.ArrayList;
import java.util.List;

/**
 * The one class that loads the CoMIR native library and declares its entry points.
 * <p>
 * A native library can be loaded by only one class loader per JVM, so it is loaded here,
 * once: from {@code comir.library} (a file path) if set, else from {@code java.library.path}
 * (Fiji puts {@code lib/linux64} there), else from the install folder next to the plugin jar
 * ({@code Fiji.app/plugins/…jar} → {@code Fiji.app/lib/linux64}). libtorch is found next to
 * the library through its RUNPATH, so no {@code LD_LIBRARY_PATH} is needed.
 */
public final class Native {
	static final String LIBRARY = "comir";
	private static final String FILE_NAME = System.mapLibraryName(LIBRARY);
	private static final String LOAD_ERROR = load();

	private Native() {}

	/** Throws a {@link ComirException} saying why, if the library could not be loaded. */
	public static void ensureLoaded() {
		if (LOAD_ERROR != null) throw new ComirException(LOAD_ERROR);
	}

	public static boolean isLoaded() {
		return LOAD_ERROR == null;
	}

	/** @return null when loaded, else a message naming what was tried and what failed. */
	private static String load() {
		String unsupported = unsupportedPlatform(System.getProperty("os.name", ""), System.getProperty("os.arch", ""));
		if (unsupported != null) return unsupported;
		List<String> tried = new ArrayList<String>();
		String explicit = System.getProperty("comir.library");
		if (explicit != null) return tryLoad(new File(explicit), tried) ? null : failure(tried);
		try {
			System.loadLibrary(LIBRARY);
			return null;
		}
		catch (UnsatisfiedLinkError e) {
			tried.add("java.library.path (" + System.getProperty("java.library.path") + "): " + e.getMessage());
			if (alreadyLoadedElsewhere(e)) return failure(tried);
		}
		for (File candidate : installCandidates()) {
			if (tryLoad(candidate, tried)) return null;
		}
		return failure(tried);
	}

	/**
	 * The native library is built for Linux x86-64 only (libtorch from the PyPI wheels): say so
	 * plainly on other systems instead of asking for a lib/linux64 folder that cannot help.
	 * @return null on a supported platform, else the message
	 */
	static String unsupportedPlatform(String os, String arch) {
		boolean linux = os.toLowerCase(java.util.Locale.ROOT).startsWith("linux");
		boolean x64 = arch.equals("amd64") || arch.equals("x86_64");
		if (linux && x64) return null;
		return "CoMIR's native library is available for Linux on x86-64 (64-bit Intel/AMD) only; this is "
			+ os + " on " + arch + ". Please use a Linux x86-64 machine (a workstation, a cluster node, or a Linux "
			+ "virtual machine), or run the comir command-line tool there.";
	}

	private static boolean tryLoad(File file, List<String> tried) {
		if (!file.isFile()) {
			tried.add(file + ": no such file");
			return false;
		}
		try {
			System.load(file.getAbsolutePath());
			return true;
		}
		catch (UnsatisfiedLinkError e) {
			tried.add(file + ": " + e.getMessage());
			return false;
		}
	}

	private static boolean alreadyLoadedElsewhere(UnsatisfiedLinkError e) {
		return e.getMessage() != null && e.getMessage().contains("already loaded in another classloader");
	}

	/** lib/linux64 (and lib/) in the folders above the jar: Fiji.app/plugins/[sub/]x.jar. */
	private static List<File> installCandidates() {
		List<File> result = new ArrayList<File>();
		try {
			URL location = Native.class.getProtectionDomain().getCodeSource().getLocation();
			File dir = new File(location.toURI()).getParentFile();
			for (int up = 0; dir != null && up < 3; up++, dir = dir.getParentFile()) {
				result.add(new File(dir, "lib/linux64/" + FILE_NAME));
				result.add(new File(dir, "lib/" + FILE_NAME));
			}
		}
		catch (Exception e) {
			// No code source (unusual class loader): only java.library.path applies.
		}
		return result;
	}

	private static String failure(List<String> tried) {
		StringBuilder sb = new StringBuilder("The CoMIR native library (" + FILE_NAME + ") could not be loaded.\n");
		boolean elsewhere = false;
		for (String t : tried) {
			sb.append("  - ").append(t).append('\n');
			elsewhere |= t.contains("already loaded in another classloader");
		}
		if (elsewhere) sb.append("It was loaded before by another copy of the plugin (e.g. after Help > Refresh Menus): please restart Fiji.");
		else sb.append("Copy the whole lib/linux64 folder of the CoMIR install into Fiji.app/lib/linux64 "
			+ "(it holds " + FILE_NAME + " and the libtorch libraries it needs), then restart Fiji.");
		return sb.toString();
	}

	// ---- entry points (src/jni/mod.rs) ----

	/** Versions and devices; runs one libtorch convolution as a check. */
	public static native String runtimeInfo();

	/**
	 * Reads and checks a transform file and plans its output: the request and the answer are
	 * JSON (see {@link TransformPlan}, the Rust {@code comir::ApplyRequest} / {@code ApplyPlan}).
	 */
	public static native String planApply(String request);

	/**
	 * Resamples one plane (byte[], short[], float[] or RGB int[]) through a fixed → moving matrix
	 * onto an output grid, bilinearly; returns a new array of the same type.
	 * @param request {width, height, matrix: [a, b, tx, c, d, ty], out_width, out_height}
	 *        (the library's {@code request::WarpRequest})
	 */
	public static native Object warpPlane(Object pixels, String request);

	/** An id for one long call: pass it along, poll {@link #jobProgress}, {@link #cancelJob}, then {@link #endJob}. */
	public static native long newJob();

	public static native double jobProgress(long job);

	/** ": 40%, about 3 min left" for the status bar (or "..." until that is known). */
	public static native String jobStatus(long job);

	public static native void cancelJob(long job);

	public static native void endJob(long job);

	/**
	 * Registers the moving image onto the fixed one. Each image comes as its planes (the channels
	 * of one slice, see {@link NativeImage}) and the mask of a non-rectangular ROI (else null).
	 * @param request {fixed: image, moving: image, model: path or absent (mutual information on
	 *        the images themselves), params: {@link RegisterParams#toJson}}, image = {@link NativeImage#json}
	 *        (the library's {@code request::RegisterRequest})
	 * @return the outcome as JSON (read by {@link Registration}): matrix (fixed→moving, pixels),
	 *         kind, method, passed, score, measure, overlap, inliers, reason, rotation_degrees,
	 *         scale, translation_px, binning, seconds, matches [[fx, fy, mx, my], ...]
	 */
	public static native String register(Object[] fixedPlanes, byte[] fixedMask, Object[] movingPlanes, byte[] movingMask,
		String request, long job);

	/** The methods, transform types and registration defaults as JSON: see {@link RegisterParams}. */
	public static native String choices();

	/**
	 * Writes transform.json, bigwarp-landmarks.csv/.json and ngff-affine.json into dir; returns
	 * their paths. The request is JSON: {matrix: [a, b, tx, c, d, ty], kind, fixed: grid, moving:
	 * grid} with grid = {width, height, calibration: {pixel_width, pixel_height, unit}}.
	 */
	public static native String[] exportTransform(String dir, String request);

	/**
	 * Fits a transform to a BigWarp landmarks file (CSV or JSON). The request is JSON:
	 * {landmarks: path, kind: "rigid" | "similarity" | "affine" | "" (the type the file names, else
	 * affine), fixed: grid, moving_calibration} (grid as for {@link #exportTransform}).
	 * @return the JSON of {@link #register} (score = RMS residual in pixels, matches = the
	 *         active landmarks in pixels, kind = the fitted kind)
	 */
	public static native String importLandmarks(String request);

	/**
	 * Registers every pair NAME+fixedSuffix / NAME+movingSuffix of dir with one model (or MI),
	 * writing outDir/NAME/ per pair and outDir/summary.csv.
	 * @return JSON: {summary_csv_path, pass, fail, error, summary_csv}
	 */
	public static native String batchRegister(String dir, String fixedSuffix, String movingSuffix, String modelPath,
		String params, String outDir, long job);

	/** The names of the model's modalities the fixed and the moving image go through (as register decides). */
	public static native Object[] modelSides(String modelPath, int fixedChannels, int movingChannels);

	/** Maps points (x0, y0, x1, y1, ...) fixed → moving, or moving → fixed when inverse. */
	public static native double[] mapPoints(double[] matrix, double[] xy, boolean inverse);

	/**
	 * The CoMIR of one image, one float[] per representation channel.
	 * @param request {image: {@link NativeImage#json}, model: path, modality: name or absent (by channel count)}
	 */
	public static native float[][] represent(Object[] planes, String request, long job);

	/**
	 * How long training takes here, as a sentence (measured on a few steps).
	 * @param request {params: {@link TrainParams#toJson}, channels: [channels of A, channels of B]}
	 */
	public static native String trainingEstimate(String request);

	/**
	 * Trains a new model on one aligned pair and writes it; returns the summary, one line each.
	 * @param request {image: {@link NativeImage#json} (grid and ROI of both), params: {@link TrainParams#toJson}, out: path}
	 */
	public static native String train(Object[] aPlanes, Object[] bPlanes, byte[] regionMask, String request, long job);
}
