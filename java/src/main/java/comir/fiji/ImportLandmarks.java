package comir.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.plugin.PlugIn;

/**
 * Plugins › Registration › CoMIR › Import BigWarp Landmarks...: fits a transform to landmarks
 * placed in BigWarp (CSV or JSON; fixed = BigWarp's target image), shows the overlay and the
 * residual in the Results table, and makes it the current registration (Export to BigWarp,
 * ROI transfer). "Aligned" shows the moving image resampled onto the fixed grid, e.g. to train
 * a model on a pair aligned by hand.
 * <p>
 * Macro: {@code run("Import BigWarp Landmarks...", "landmarks=/path/landmarks.csv fixed=a.tif
 * moving=b.tif transform=[from file] overlay aligned");}
 */
public class ImportLandmarks implements PlugIn {
	static final String[] KINDS = {"from file", "rigid", "similarity", "affine"};
	private static final String PREF = "comir.import.";

	@Override
	public void run(String arg) {
		int[] ids = WindowManager.getIDList();
		if (ids == null || ids.length < 2) {
			IJ.error("Import BigWarp Landmarks", "Please open the fixed (BigWarp's target) and the moving image first.");
			return;
		}
		String[] titles = RegisterMultimodal.titles(ids);
		GenericDialog gd = new MacroDialog("Import BigWarp Landmarks");
		gd.addFileField("Landmarks (.csv or .json)", Prefs.get(PREF + "file", ""), 40);
		gd.addChoice("Fixed image", titles, titles[0]);
		gd.addChoice("Moving image", titles, titles[1]);
		gd.addChoice("Transform", KINDS, Prefs.get(PREF + "kind", KINDS[0]));
		gd.addCheckbox("Overlay (fixed + aligned moving, landmarks as points)", true);
		gd.addCheckbox("Aligned moving image (all channels and slices)", false);
		gd.addMessage("A CSV cannot name the transform type: 'from file' fits an affine then.");
		gd.showDialog();
		if (gd.wasCanceled()) return;
		String path = gd.getNextString().trim();
		ImagePlus fixed = WindowManager.getImage(ids[gd.getNextChoiceIndex()]);
		ImagePlus moving = WindowManager.getImage(ids[gd.getNextChoiceIndex()]);
		String kind = gd.getNextChoice();
		boolean overlay = gd.getNextBoolean();
		boolean aligned = gd.getNextBoolean();
		Prefs.set(PREF + "file", path);
		Prefs.set(PREF + "kind", kind);
		try {
			Registration r = fit(path, fixed, moving, kind);
			RegisterMultimodal.last = r;
			RegisterMultimodal.addResultsRow(r);
			if (overlay) RegisterMultimodal.overlay(r).show();
			if (aligned) aligned(r).show();
			if (!r.passed) RegisterMultimodal.warn(r);
		}
		catch (ComirException e) {
			e.show("Import BigWarp Landmarks");
		}
	}

	/** The transform of a landmarks file between these two images (their calibrations convert BigWarp's units). */
	public static Registration fit(String path, ImagePlus fixed, ImagePlus moving, String kind) {
		Native.ensureLoaded();
		if (path == null || path.isEmpty()) throw new ComirException("Please choose a BigWarp landmarks file (.csv or .json).");
		if (fixed == moving) throw new ComirException("Fixed and moving image must be different images.");
		String k = kind == null || kind.equals(KINDS[0]) ? "" : kind;
		String request = "{\"landmarks\":" + Json.quote(path) + ",\"kind\":" + Json.quote(k) + ",\"fixed\":" + TransformPlan.grid(fixed)
			+ ",\"moving_calibration\":" + NativeImage.calibration(moving.getCalibration()) + "}";
		return new Registration(Native.importLandmarks(request), fixed, moving);
	}

	/** Every plane of the moving image on the fixed grid, with the fixed calibration. */
	static ImagePlus aligned(Registration r) {
		ImagePlus out = ApplyTransform.warp(r.moving, r.matrix, r.fixed.getWidth(), r.fixed.getHeight());
		out.setCalibration(r.fixed.getCalibration().copy());
		out.setTitle(r.moving.getShortTitle() + "-aligned-to-" + r.fixed.getShortTitle());
		return out;
	}
}
