package comir.fiji;

import ij.CompositeImage;
import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.gui.Overlay;
import ij.gui.PointRoi;
import ij.gui.PolygonRoi;
import ij.gui.Roi;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.plugin.PlugIn;
import ij.plugin.frame.RoiManager;
import ij.process.FloatPolygon;
import ij.process.ImageProcessor;
import ij.process.LUT;
import java.awt.Color;
import java.io.File;

/**
 * Plugins › Registration › CoMIR › Register Multimodal Images...: finds the transform that
 * aligns the moving image to the fixed one (through their CoMIRs with a model, or by mutual
 * information without one), shows an overlay, a Results row and the quality verdict, and can
 * export the transform for BigWarp and transfer ROIs.
 * <p>
 * Macro: {@code run("Register Multimodal Images...", "fixed=a.tif moving=b.tif model=/m.safetensors
 * method=auto transform=rigid use_rois export=/out");}
 * (every rotation is searched unless {@code small_rotation} is given; stacks: {@code stack_planes=current},
 * {@code max-projection} or {@code every-plane})
 */
public class RegisterMultimodal implements PlugIn {
	static final String TABLE = "CoMIR Registrations";
	private static final String PREF = "comir.register.";
	/** The last registration, for Export to BigWarp. */
	static volatile Registration last;

	@Override
	public void run(String arg) {
		int[] ids = WindowManager.getIDList();
		if (ids == null || ids.length < 2) {
			IJ.error("Register Multimodal Images", "Please open the fixed and the moving image first.");
			return;
		}
		if (!Native.isLoaded()) { // the dialog's choices come from the library
			IJ.error("Register Multimodal Images", loadError());
			return;
		}
		String[] titles = titles(ids);
		GenericDialog gd = new MacroDialog("Register Multimodal Images");
		gd.addChoice("Fixed image", titles, titles[0]);
		gd.addChoice("Moving image", titles, titles[1]);
		RegisterParams.addFields(gd);
		gd.addChoice("Stack_planes", RegisterParams.list(RegisterParams.choices(), "stack_planes"), Prefs.get(PREF + "stack", "current"));
		gd.addCheckbox("Use_ROIs to restrict the registration", true);
		gd.addCheckbox("Transfer ROI Manager ROIs from moving to fixed", false);
		gd.addCheckbox("Backward ROI transfer (ROI Manager ROIs from fixed to moving)", false);
		gd.addCheckbox("Show CoMIRs (with a model)", false);
		gd.addDirectoryField("Export folder (optional: BigWarp files)", "", 40);
		gd.showDialog();
		if (gd.wasCanceled()) return;
		ImagePlus fixed = WindowManager.getImage(ids[gd.getNextChoiceIndex()]);
		ImagePlus moving = WindowManager.getImage(ids[gd.getNextChoiceIndex()]);
		RegisterParams how = RegisterParams.read(gd);
		String stackPlanes = gd.getNextChoice();
		Prefs.set(PREF + "stack", stackPlanes);
		boolean useRois = gd.getNextBoolean();
		boolean transfer = gd.getNextBoolean();
		boolean backward = gd.getNextBoolean();
		boolean showComirs = gd.getNextBoolean();
		String export = gd.getNextString().trim();
		if (fixed == moving) {
			IJ.error("Register Multimodal Images", "Fixed and moving image must be different images.");
			return;
		}
		try {
			if (stackPlanes.equals("every-plane") && planeCount(moving) > 1) {
				registerEveryPlane(fixed, moving, how, useRois, export);
				return;
			}
			boolean project = stackPlanes.equals("max-projection");
			Registration r = register(project ? maxProjection(fixed) : fixed, project ? maxProjection(moving) : moving, how, useRois);
			String closed = closedImage(fixed, moving);
			if (closed != null) {
				IJ.error("Register Multimodal Images", closed);
				return;
			}
			last = r;
			if (!project) {
				notePlanes(fixed);
				notePlanes(moving);
			}
			noteBinning(r);
			if (!r.choice.isEmpty()) IJ.log("CoMIR auto (" + r.moving.getTitle() + "): " + r.choice);
			if (!r.refinement.isEmpty()) IJ.log("CoMIR (" + r.moving.getTitle() + "): " + r.refinement);
			addResultsRow(r);
			ImagePlus overlay = overlay(r);
			overlay.show();
			Roi[] rois = managerRois(); // both directions map the ROIs drawn before this run
			if (transfer) transferRois(r, rois, true);
			if (backward) transferRois(r, rois, false);
			if (showComirs && !how.model.isEmpty()) for (ImagePlus c : comirs(r, how.model)) c.show();
			if (!export.isEmpty()) ExportBigWarp.export(r, export);
			if (!r.passed) warn(r);
		}
		catch (ComirException e) {
			e.show("Register Multimodal Images");
		}
	}

	/**
	 * Registration uses one plane (all channels of the current z-slice and time frame). For a
	 * stack, say which one, so nobody assumes the whole stack was registered.
	 */
	static void notePlanes(ImagePlus imp) {
		if (planeCount(imp) > 1) {
			IJ.log("CoMIR: " + imp.getTitle() + " is a stack; only its current plane (z=" + imp.getSlice() + "/" + imp.getNSlices()
				+ ", t=" + imp.getFrame() + "/" + imp.getNFrames() + ") was registered. Choose the plane before running, "
				+ "or choose Stack planes: max-projection or every-plane.");
		}
	}

	/** z-slices × time frames. */
	static int planeCount(ImagePlus imp) {
		return imp.getNSlices() * imp.getNFrames();
	}

	/**
	 * The maximum projection over z of the current time frame (every channel), with the
	 * image's calibration and ROI; the image itself when it has one z-slice.
	 */
	static ImagePlus maxProjection(ImagePlus imp) {
		if (imp.getNSlices() <= 1) return imp;
		ij.plugin.ZProjector zp = new ij.plugin.ZProjector(imp);
		zp.setMethod(ij.plugin.ZProjector.MAX_METHOD);
		zp.setStartSlice(1);
		zp.setStopSlice(imp.getNSlices());
		if (imp.isHyperStack()) zp.doHyperStackProjection(false);
		else zp.doProjection();
		ImagePlus p = zp.getProjection();
		p.setTitle("MAX_" + imp.getTitle());
		p.setCalibration(imp.getCalibration().copy());
		if (imp.getRoi() != null) p.setRoi((Roi) imp.getRoi().clone());
		IJ.log("CoMIR: registering the maximum projection of " + imp.getTitle() + " over its " + imp.getNSlices() + " z-slices (t=" + imp.getFrame() + ").");
		return p;
	}

	/** One plane (z, t; every channel) of imp as an image of its own, sharing the pixels. */
	static ImagePlus plane(ImagePlus imp, int z, int t) {
		int channels = NativeImage.channels(imp);
		ImageStack s = new ImageStack(imp.getWidth(), imp.getHeight());
		for (int c = 1; c <= channels; c++) s.addSlice("c" + c, imp.getStack().getProcessor(imp.getStackIndex(c, z, t)));
		ImagePlus p = new ImagePlus(imp.getTitle() + " (z=" + z + ", t=" + t + ")", s);
		p.setDimensions(channels, 1, 1);
		p.setCalibration(imp.getCalibration().copy());
		if (imp.getRoi() != null) p.setRoi((Roi) imp.getRoi().clone());
		return p;
	}

	/**
	 * Every plane (z, t) of the moving stack registered on its own: onto the fixed plane of the
	 * same z and t when both stacks have the same planes, else onto the fixed image's current
	 * plane. One Results row per plane, the BigWarp files per plane (export/plane-zZ-tT), and
	 * the moving stack with each plane warped by its own transform onto the fixed grid.
	 */
	static void registerEveryPlane(ImagePlus fixed, ImagePlus moving, RegisterParams how, boolean useRois, String export) {
		int nz = moving.getNSlices(), nt = moving.getNFrames();
		boolean samePlanes = fixed.getNSlices() == nz && fixed.getNFrames() == nt;
		ImageStack out = new ImageStack(fixed.getWidth(), fixed.getHeight());
		int channels = 1, failed = 0;
		for (int t = 1; t <= nt; t++)
			for (int z = 1; z <= nz; z++) {
				ImagePlus mp = plane(moving, z, t);
				ImagePlus fp = samePlanes ? plane(fixed, z, t) : plane(fixed, fixed.getSlice(), fixed.getFrame());
				Registration r = register(fp, mp, how, useRois);
				String closed = closedImage(fixed, moving);
				if (closed != null) throw new ComirException(closed);
				last = r;
				addResultsRow(r);
				if (!r.passed) {
					failed++;
					IJ.log("CoMIR warning: plane z=" + z + ", t=" + t + " may be wrong: " + r.reason);
				}
				if (!export.isEmpty()) ExportBigWarp.export(r, new File(export, "plane-z" + z + "-t" + t).getPath());
				ImageStack warped = ApplyTransform.warp(mp, r.matrix, fixed.getWidth(), fixed.getHeight()).getStack();
				channels = warped.getSize();
				for (int c = 1; c <= channels; c++) out.addSlice("z=" + z + " t=" + t + " c=" + c, warped.getProcessor(c));
			}
		ImagePlus result = new ImagePlus("Registered " + moving.getTitle() + " (every plane) on " + fixed.getTitle(), out);
		result.setDimensions(channels, nz, nt);
		result.setOpenAsHyperStack(true);
		result.setCalibration(fixed.getCalibration().copy());
		(channels > 1 ? new CompositeImage(result, IJ.COMPOSITE) : result).show();
		IJ.log("CoMIR: registered " + nz * nt + " planes of " + moving.getTitle() + (samePlanes ? " each onto the same plane of " : " onto the current plane of ")
			+ fixed.getTitle() + (failed > 0 ? "; " + failed + " failed the quality check (see the Results rows)." : "."));
	}

	/**
	 * The pixels were read when the registration started; the results (overlay, Results row,
	 * ROIs) need both images again. If one was closed meanwhile, say so instead of failing
	 * deep inside ImageJ or adding a row for an image that is gone.
	 * @return null when both are still open, else the message
	 */
	static String closedImage(ImagePlus fixed, ImagePlus moving) {
		for (ImagePlus imp : new ImagePlus[] {fixed, moving}) {
			if (WindowManager.getImage(imp.getID()) == null || imp.getStack() == null || imp.getStack().getSize() == 0) {
				return "\"" + imp.getTitle() + "\" was closed while it was being registered, so no result was added. "
					+ "Open it again and rerun the registration.";
			}
		}
		return null;
	}

	/** Why the native library is not loaded. */
	static String loadError() {
		try {
			Native.ensureLoaded();
			return "";
		}
		catch (ComirException e) {
			return e.getMessage();
		}
	}

	/** Window titles of the images with these ids (the dialog's image choices). */
	static String[] titles(int[] ids) {
		String[] titles = new String[ids.length];
		for (int i = 0; i < ids.length; i++) titles[i] = WindowManager.getImage(ids[i]).getTitle();
		return titles;
	}

	/** Registers moving onto fixed; the images are not modified. */
	public static Registration register(ImagePlus fixed, ImagePlus moving, String model, String method, String kind,
		boolean anyRotation, boolean useRois)
	{
		return register(fixed, moving, new RegisterParams(model, method, kind, anyRotation), useRois);
	}

	/** Registers moving onto fixed with these parameters; the images are not modified. */
	public static Registration register(ImagePlus fixed, ImagePlus moving, RegisterParams how, boolean useRois) {
		// Registration works in physical units (the library resamples when pixel sizes differ).
		final NativeImage f = NativeImage.of(fixed, useRois), m = NativeImage.of(moving, useRois);
		String model = how.modelPath();
		final String request = "{\"fixed\":" + f.json + ",\"moving\":" + m.json + (model == null ? "" : ",\"model\":" + Json.quote(model))
			+ ",\"params\":" + how.toJson() + "}";
		String r = NativeJob.run("Registering " + moving.getTitle() + " onto " + fixed.getTitle(), new NativeJob.Call<String>() {
			@Override
			public String run(long job) {
				return Native.register(f.planes, f.mask, m.planes, m.mask, request, job);
			}
		});
		return new Registration(r, fixed, moving);
	}

	private static ImageProcessor firstChannel(ImagePlus imp) {
		return imp.getStack().getProcessor(imp.getStackIndex(1, imp.getSlice(), imp.getFrame())).convertToFloat();
	}

	/** Fixed (green) and the moving image warped onto it (magenta), with the fixed calibration. */
	public static ImagePlus overlay(Registration r) {
		ImagePlus single = new ImagePlus("moving", r.moving.getStack().getProcessor(r.moving.getStackIndex(1, r.moving.getSlice(), r.moving.getFrame())));
		ImagePlus warped = ApplyTransform.warp(single, r.matrix, r.fixed.getWidth(), r.fixed.getHeight());
		ImageStack stack = new ImageStack(r.fixed.getWidth(), r.fixed.getHeight());
		stack.addSlice("fixed: " + r.fixed.getTitle(), firstChannel(r.fixed));
		stack.addSlice("moving: " + r.moving.getTitle(), warped.getProcessor().convertToFloat());
		ImagePlus imp = new ImagePlus("Registered " + r.moving.getTitle() + " on " + r.fixed.getTitle(), stack);
		imp.setDimensions(2, 1, 1);
		CompositeImage composite = new CompositeImage(imp, IJ.COMPOSITE);
		composite.setChannelLut(LUT.createLutFromColor(Color.green), 1);
		composite.setChannelLut(LUT.createLutFromColor(Color.magenta), 2);
		for (int c = 1; c <= 2; c++) {
			composite.setC(c);
			composite.resetDisplayRange();
		}
		composite.setC(1);
		Calibration cal = r.fixed.getCalibration().copy();
		composite.setCalibration(cal);
		int n = r.matches.length / 4;
		if (n > 0) {
			float[] x = new float[n], y = new float[n];
			for (int i = 0; i < n; i++) {
				x[i] = (float) r.matches[4 * i];
				y[i] = (float) r.matches[4 * i + 1];
			}
			PointRoi points = new PointRoi(x, y, n);
			points.setStrokeColor(Color.yellow);
			composite.setOverlay(new Overlay(points));
		}
		composite.setProperty("Info", "CoMIR registration: " + r.method + ", " + r.kind + ", quality " + (r.passed ? "pass" : "FAIL: " + r.reason));
		return composite;
	}

	static void addResultsRow(Registration r) {
		ResultsTable rt = ResultsTable.getResultsTable(TABLE);
		if (rt == null) rt = new ResultsTable();
		Calibration mc = r.moving.getCalibration();
		rt.incrementCounter();
		rt.addValue("Fixed", r.fixed.getTitle());
		rt.addValue("Moving", r.moving.getTitle());
		rt.addValue("Method", r.method);
		rt.addValue("Transform", r.kind);
		rt.addValue("Angle (deg)", r.angleDegrees);
		rt.addValue("Scale", r.scale);
		rt.addValue("Tx (px)", r.tx);
		rt.addValue("Ty (px)", r.ty);
		if (r.translationCalibrated != null) { // calibrated: the translation in its unit too
			rt.addValue("Tx (" + mc.getUnit() + ")", r.translationCalibrated[0]);
			rt.addValue("Ty (" + mc.getUnit() + ")", r.translationCalibrated[1]);
		}
		rt.addValue("Quality", r.passed ? "pass" : "FAIL");
		rt.addValue("Score", r.score); // one column; "Measure" says ncc or nmi
		rt.addValue("Measure", r.measure);
		rt.addValue("Overlap", r.overlap);
		rt.addValue("Inliers", r.inliers);
		rt.addValue("Seconds", r.seconds);
		rt.addValue("Reason", r.reason);
		rt.show(TABLE);
	}

	/** Says in the log when the pair was too large for working memory and was registered binned. */
	static void noteBinning(Registration r) {
		if (r.binning > 1) IJ.log("CoMIR: " + r.fixed.getTitle() + " and " + r.moving.getTitle() + " were registered as "
			+ r.binning + "×" + r.binning + " binned copies (the pair is too large for working memory at full size); "
			+ "the transform is in full-resolution pixels.");
	}

	static void warn(Registration r) {
		String msg = "The registration of " + r.moving.getTitle() + " may be wrong: " + r.reason + ".\n"
			+ "Check the overlay; try another method, 'Any rotation', a ROI around the shared region, or a model trained on these modalities.";
		if (IJ.isMacro() || IJ.getInstance() == null) IJ.log("CoMIR warning: " + msg);
		else IJ.showMessage("CoMIR: registration quality", msg);
	}

	/** The CoMIRs of both images, each through the model network that the registration used. */
	static ImagePlus[] comirs(Registration r, String model) {
		Object[] names = Native.modelSides(new File(model).getAbsolutePath(), NativeImage.channels(r.fixed), NativeImage.channels(r.moving));
		return new ImagePlus[] {ComputeComir.compute(r.fixed, model, (String) names[0]), ComputeComir.compute(r.moving, model, (String) names[1])};
	}

	private static Roi[] managerRois() {
		RoiManager rm = RoiManager.getInstance2();
		return rm == null ? new Roi[0] : rm.getRoisAsArray();
	}

	/** Adds each ROI Manager ROI mapped from moving to fixed coordinates, as "name (on fixed)". */
	static int transferRois(Registration r) {
		return transferRois(r, managerRois(), true);
	}

	/**
	 * Adds each of {@code rois} to the ROI Manager, mapped from moving to fixed coordinates
	 * ("name (on fixed)"), or from fixed to moving ("name (on moving)").
	 */
	static int transferRois(Registration r, Roi[] rois, boolean toFixed) {
		RoiManager rm = RoiManager.getInstance2();
		if (rm == null || rois.length == 0) return 0;
		int added = 0;
		for (Roi roi : rois) {
			FloatPolygon p = roi.getFloatPolygon();
			if (p == null || p.npoints == 0) continue;
			double[] xy = new double[2 * p.npoints];
			for (int i = 0; i < p.npoints; i++) {
				xy[2 * i] = p.xpoints[i];
				xy[2 * i + 1] = p.ypoints[i];
			}
			double[] m = Native.mapPoints(r.matrix, xy, toFixed);
			float[] x = new float[p.npoints], y = new float[p.npoints];
			for (int i = 0; i < p.npoints; i++) {
				x[i] = (float) m[2 * i];
				y[i] = (float) m[2 * i + 1];
			}
			int type = roi.isArea() ? Roi.POLYGON : roi.isLine() ? Roi.POLYLINE : Roi.POINT;
			Roi mapped = type == Roi.POINT ? new PointRoi(x, y, p.npoints) : new PolygonRoi(new FloatPolygon(x, y), type);
			String name = (roi.getName() == null ? "ROI" : roi.getName()) + (toFixed ? " (on fixed)" : " (on moving)");
			rm.addRoi(mapped);
			rm.rename(rm.getCount() - 1, name); // addRoi replaces the name by a position label
			added++;
		}
		return added;
	}
}
