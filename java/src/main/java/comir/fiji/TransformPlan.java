package comir.fiji;

import ij.ImagePlus;
import java.util.List;
import java.util.Map;

/**
 * A transform file read by the library, with where applying it puts the output (the Rust
 * {@code comir::ApplyPlan}): output size and calibration follow the library's one rule, so
 * Apply Transform in Fiji and {@code comir apply} always agree.
 */
public final class TransformPlan {
	/** Fixed → moving, pixels: {a, b, tx, c, d, ty}. */
	public final double[] matrix;
	public final String kind;
	public final int width, height;
	/** The fixed image's pixel size and unit when the file records them, else NaN / null. */
	public final double pixelWidth, pixelHeight;
	public final String unit;

	private TransformPlan(String json) {
		Map<String, Object> o = Json.object(json);
		List<?> m = (List<?>) o.get("matrix");
		matrix = new double[m.size()];
		for (int i = 0; i < matrix.length; i++) matrix[i] = (Double) m.get(i);
		kind = (String) o.get("kind");
		width = ((Double) o.get("width")).intValue();
		height = ((Double) o.get("height")).intValue();
		@SuppressWarnings("unchecked")
		Map<String, Object> cal = (Map<String, Object>) o.get("calibration");
		pixelWidth = cal == null ? Double.NaN : (Double) cal.get("pixel_width");
		pixelHeight = cal == null ? Double.NaN : (Double) cal.get("pixel_height");
		unit = cal == null ? null : (String) cal.get("unit");
	}

	/**
	 * Reads a transform file (CoMIR JSON, or BigWarp landmarks CSV/JSON placed on the fixed
	 * image's grid) for applying it to {@code input}.
	 * @param fixed the fixed image, or null (a CoMIR transform file knows its grid; landmark files need one)
	 * @param width output width, or 0 for the library's default (likewise height)
	 */
	public static TransformPlan read(String path, ImagePlus input, ImagePlus fixed, int width, int height) {
		Native.ensureLoaded();
		StringBuilder r = new StringBuilder("{\"transform\":").append(Json.quote(path));
		if (fixed != null) r.append(",\"fixed\":").append(grid(fixed));
		r.append(",\"moving_calibration\":").append(NativeImage.calibration(input.getCalibration()));
		r.append(",\"input_size\":[").append(input.getWidth()).append(',').append(input.getHeight()).append(']');
		if (width > 0 && height > 0) r.append(",\"size\":[").append(width).append(',').append(height).append(']');
		return new TransformPlan(Native.planApply(r.append('}').toString()));
	}

	/** An image's grid as the library reads it: {width, height, calibration}. */
	static String grid(ImagePlus imp) {
		return "{\"width\":" + imp.getWidth() + ",\"height\":" + imp.getHeight() + ",\"calibration\":" + NativeImage.calibration(imp.getCalibration()) + "}";
	}

}
