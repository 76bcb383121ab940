package comir.fiji;

import ij.ImagePlus;
import java.util.List;
import java.util.Map;

/**
 * The outcome of one registration or landmark fit, read from the JSON the native library
 * returns (the Rust {@code comir::Outcome}; the CLI shows the same fields). No numerics here.
 */
public final class Registration {
	/** Fixed → moving, pixels: {a, b, tx, c, d, ty}. */
	public final double[] matrix;
	public final boolean passed;
	public final double score, overlap, angleDegrees, scale, tx, ty, seconds;
	/** RANSAC inliers or landmarks, or -1 for intensity-based methods. */
	public final int inliers;
	/** The images were registered as binning × binning binned copies (1: full resolution). */
	public final int binning;
	public final String method, measure, reason, kind;
	/** What auto tried and which it kept, as a sentence ("" when one method was tried). */
	public final String choice;
	/** What the final refinement on the CoMIRs did ("" when none ran). */
	public final String refinement;
	/** The translation in the moving image's unit, or null when it is uncalibrated. */
	public final double[] translationCalibrated;
	/** Inlier correspondences: fx, fy, mx, my, ... */
	public final double[] matches;
	public final ImagePlus fixed, moving;

	Registration(String json, ImagePlus fixed, ImagePlus moving) {
		Map<String, Object> o = Json.object(json);
		matrix = doubles((List<?>) o.get("matrix"));
		passed = Boolean.TRUE.equals(o.get("passed"));
		score = number(o, "score");
		overlap = number(o, "overlap");
		double[] t = doubles((List<?>) o.get("translation_px"));
		tx = t[0];
		ty = t[1];
		translationCalibrated = o.get("translation_calibrated") == null ? null : doubles((List<?>) o.get("translation_calibrated"));
		angleDegrees = number(o, "rotation_degrees");
		scale = number(o, "scale");
		seconds = number(o, "seconds");
		inliers = o.get("inliers") == null ? -1 : (int) number(o, "inliers");
		binning = (int) number(o, "binning");
		method = (String) o.get("method");
		measure = (String) o.get("measure");
		reason = (String) o.get("reason");
		kind = (String) o.get("kind");
		choice = o.get("choice") == null ? "" : (String) o.get("choice");
		refinement = o.get("refinement") == null ? "" : (String) o.get("refinement");
		List<?> pairs = (List<?>) o.get("matches");
		matches = new double[4 * pairs.size()];
		for (int i = 0; i < pairs.size(); i++) System.arraycopy(doubles((List<?>) pairs.get(i)), 0, matches, 4 * i, 4);
		this.fixed = fixed;
		this.moving = moving;
	}

	/** A number field; NaN when absent or null (e.g. the overlap of a landmark fit). */
	private static double number(Map<String, Object> o, String key) {
		Object v = o.get(key);
		return v instanceof Double ? (Double) v : Double.NaN;
	}

	private static double[] doubles(List<?> values) {
		double[] d = new double[values.size()];
		for (int i = 0; i < d.length; i++) d[i] = (Double) values.get(i);
		return d;
	}
}
