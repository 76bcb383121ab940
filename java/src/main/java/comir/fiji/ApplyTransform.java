package comir.fiji;

import ij.CompositeImage;
import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.measure.Calibration;
import ij.plugin.PlugIn;
import ij.process.ImageProcessor;

/**
 * Plugins › Registration › CoMIR › Apply Transform...: resamples the active image (the
 * moving image) through a CoMIR transform file (or BigWarp landmarks, CSV or JSON) onto the
 * fixed image's grid. Every slice, channel and frame is warped; the input image is never modified.
 * <p>
 * Macro: {@code run("Apply Transform...", "transform=/path/t.json width=0 height=0");}
 * (0 = the fixed size stored in the transform file, else the input size). A BigWarp landmarks
 * file also needs the fixed (target) image, whose pixel size places its calibrated points:
 * {@code run("Apply Transform...", "transform=/path/landmarks.csv fixed=he.tif width=0 height=0");}
 */
public class ApplyTransform implements PlugIn {
	private static final String PREF = "comir.apply.transform";
	private static final String NO_FIXED = "[none: CoMIR transform file]";

	@Override
	public void run(String arg) {
		ImagePlus imp = IJ.getImage();
		if (imp == null) return;
		GenericDialog gd = new MacroDialog("Apply CoMIR Transform");
		gd.addFileField("Transform", Prefs.get(PREF, ""), 40);
		String[] choices = fixedChoices();
		gd.addChoice("Fixed image (needed for BigWarp landmarks)", choices, choices[0]);
		gd.addNumericField("Width (0 = from transform)", 0, 0);
		gd.addNumericField("Height (0 = from transform)", 0, 0);
		gd.showDialog();
		if (gd.wasCanceled()) return;
		String path = gd.getNextString().trim();
		String fixedTitle = gd.getNextChoice();
		ImagePlus fixed = NO_FIXED.equals(fixedTitle) ? null : WindowManager.getImage(fixedTitle);
		int width = (int) gd.getNextNumber();
		int height = (int) gd.getNextNumber();
		Prefs.set(PREF, path);
		try {
			ImagePlus result = apply(imp, path, fixed, width, height);
			result.show();
		}
		catch (ComirException e) {
			e.show("Apply CoMIR Transform");
		}
	}

	/** The fixed-image choices: none (a CoMIR transform file knows its grid), then the open images. */
	private static String[] fixedChoices() {
		int[] ids = WindowManager.getIDList();
		String[] titles = ids == null ? new String[0] : RegisterMultimodal.titles(ids);
		String[] choices = new String[titles.length + 1];
		choices[0] = NO_FIXED;
		System.arraycopy(titles, 0, choices, 1, titles.length);
		return choices;
	}

	/**
	 * Warps every plane of {@code imp} through the transform file; returns a new image.
	 * @param fixed  the fixed (target) image, or null; needed for BigWarp landmark files
	 * @param width  output width, or 0 for the fixed width (transform file or fixed image; else the input's)
	 * @param height output height, likewise
	 */
	public static ImagePlus apply(ImagePlus imp, String transformPath, ImagePlus fixed, int width, int height) {
		Native.ensureLoaded();
		if (transformPath.isEmpty()) throw new ComirException("Please choose a transform file (.json).");
		if (width < 0 || height < 0) throw new ComirException("Width and height must not be negative.");
		TransformPlan plan = TransformPlan.read(transformPath, imp, fixed, width, height);
		ImagePlus result = warp(imp, plan.matrix, plan.width, plan.height);
		result.setCalibration(outputCalibration(imp.getCalibration(), plan));
		return result;
	}

	/** What {@link Native#warpPlane} reads: {width, height, matrix, out_width, out_height}. */
	static String warpRequest(int width, int height, double[] matrix, int outW, int outH) {
		StringBuilder m = new StringBuilder();
		for (double v : matrix) m.append(m.length() == 0 ? "" : ",").append(v);
		return "{\"width\":" + width + ",\"height\":" + height + ",\"matrix\":[" + m + "],\"out_width\":" + outW + ",\"out_height\":" + outH + "}";
	}

	/** Every plane of {@code imp} through the fixed → moving matrix onto an outW × outH grid. */
	static ImagePlus warp(ImagePlus imp, double[] matrix, int outW, int outH) {
		Native.ensureLoaded();
		ImageStack in = imp.getStack();
		ImageStack out = new ImageStack(outW, outH);
		int n = in.getSize();
		for (int i = 1; i <= n; i++) {
			ImageProcessor ip = in.getProcessor(i);
			Object warped = Native.warpPlane(ip.getPixels(), warpRequest(ip.getWidth(), ip.getHeight(), matrix, outW, outH));
			ImageProcessor op = ip.createProcessor(outW, outH);
			op.setPixels(warped);
			op.setColorModel(ip.getColorModel());
			out.addSlice(in.getSliceLabel(i), op);
			IJ.showProgress(i, n);
		}
		ImagePlus result = new ImagePlus(resultTitle(imp.getTitle()), out);
		result.setDimensions(imp.getNChannels(), imp.getNSlices(), imp.getNFrames());
		result.setCalibration(imp.getCalibration().copy());
		if (imp.isComposite()) {
			CompositeImage composite = new CompositeImage(result, ((CompositeImage) imp).getMode());
			composite.copyLuts(imp);
			result = composite;
		}
		result.setDisplayRange(imp.getDisplayRangeMin(), imp.getDisplayRangeMax());
		return result;
	}

	/** The input's calibration with the plan's pixel size and unit when it has them; origin 0 (see the README). */
	private static Calibration outputCalibration(Calibration input, TransformPlan plan) {
		Calibration cal = input.copy();
		if (plan.unit != null) {
			cal.pixelWidth = plan.pixelWidth;
			cal.pixelHeight = plan.pixelHeight;
			cal.setUnit(plan.unit);
		}
		cal.xOrigin = 0;
		cal.yOrigin = 0;
		return cal;
	}

	private static String resultTitle(String title) {
		int dot = title.lastIndexOf('.');
		return (dot > 0 ? title.substring(0, dot) : title) + "-transformed";
	}
}
