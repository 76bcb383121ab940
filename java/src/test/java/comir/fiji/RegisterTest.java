package comir.fiji;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import ij.IJ;
import ij.ImagePlus;
import ij.WindowManager;
import ij.gui.Roi;
import ij.measure.ResultsTable;
import ij.plugin.frame.RoiManager;
import ij.process.FloatProcessor;
import java.io.BufferedReader;
import java.io.File;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.junit.rules.Timeout;

/** Register Multimodal Images and Export to BigWarp, driven as macros, checked numerically. */
public class RegisterTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	/** A command that unexpectedly opens a modal dialog fails the test instead of hanging it. */
	@Rule
	public Timeout timeout = Timeout.seconds(180);

	/** Rotation by 8° about the centre of a 200 × 180 image plus a shift: fixed → moving. */
	static final double[] TRUTH;
	static {
		double a = Math.toRadians(8), c = Math.cos(a), s = Math.sin(a), cx = 99.5, cy = 89.5;
		TRUTH = new double[] {c, -s, cx - c * cx + s * cy + 6, s, c, cy - s * cx - c * cy - 4};
	}

	static ImagePlus scene(String title, int w, int h, long seed) {
		Random rnd = new Random(seed);
		FloatProcessor ip = new FloatProcessor(w, h);
		for (int k = 0; k < w * h / 150; k++) {
			double bx = rnd.nextDouble() * w, by = rnd.nextDouble() * h, r = 2 + rnd.nextDouble() * 6, v = rnd.nextDouble() - 0.3;
			for (int y = Math.max(0, (int) (by - 3 * r)); y < Math.min(h, by + 3 * r); y++)
				for (int x = Math.max(0, (int) (bx - 3 * r)); x < Math.min(w, bx + 3 * r); x++)
					ip.setf(x, y, ip.getf(x, y) + (float) (v * Math.exp(-((x - bx) * (x - bx) + (y - by) * (y - by)) / (r * r))));
		}
		return new ImagePlus(title, ip);
	}

	/** The fixed view and a moving view (of a bigger scene) such that TRUTH maps fixed → moving. */
	static ImagePlus[] pair() throws Exception {
		ImagePlus big = scene("big", 400, 380, 7);
		double[] offset = {1, 0, 100, 0, 1, 100};
		ImagePlus fixed = ApplyTransform.warp(big, offset, 200, 180);
		fixed.setTitle("fixed");
		// moving(q) = big(offset(TRUTH⁻¹(q))): build offset ∘ TRUTH⁻¹ by mapping three points through Rust.
		double[] inv = Native.mapPoints(TRUTH, new double[] {0, 0, 1, 0, 0, 1}, true);
		double[] m = {inv[2] - inv[0], inv[4] - inv[0], inv[0] + 100, inv[3] - inv[1], inv[5] - inv[1], inv[1] + 100};
		ImagePlus moving = ApplyTransform.warp(big, m, 200, 180);
		moving.setTitle("moving");
		fixed.getCalibration().pixelWidth = fixed.getCalibration().pixelHeight = 0.5;
		fixed.getCalibration().setUnit("micron");
		moving.getCalibration().pixelWidth = moving.getCalibration().pixelHeight = 0.5;
		moving.getCalibration().setUnit("micron");
		return new ImagePlus[] {fixed, moving};
	}

	static double cornerError(double[] a, double[] b, int w, int h) {
		double sum = 0;
		for (double[] p : new double[][] {{0, 0}, {w - 1, 0}, {0, h - 1}, {w - 1, h - 1}}) {
			double dx = (a[0] * p[0] + a[1] * p[1] + a[2]) - (b[0] * p[0] + b[1] * p[1] + b[2]);
			double dy = (a[3] * p[0] + a[4] * p[1] + a[5]) - (b[3] * p[0] + b[4] * p[1] + b[5]);
			sum += Math.sqrt(dx * dx + dy * dy);
		}
		return sum / 4;
	}

	private ImagePlus overlay;

	/** Opens both images (in batch mode, as a headless macro would) and runs the command. */
	private Registration registerByMacro(ImagePlus[] p, String extra) {
		RegisterMultimodal.last = null;
		boolean batch = ij.macro.Interpreter.batchMode;
		ij.macro.Interpreter.batchMode = true;
		try {
			p[0].show();
			p[1].show();
			TestSupport.macro(null, "Register Multimodal Images...", "fixed=[" + p[0].getTitle() + "] moving=[" + p[1].getTitle() + "] model=[] method=mi transform=rigid " + extra);
			overlay = WindowManager.getImage("Registered " + p[1].getTitle() + " on " + p[0].getTitle());
		}
		finally {
			ij.macro.Interpreter.batchMode = batch;
		}
		Registration r = RegisterMultimodal.last;
		assertTrue("the macro should have registered; log: " + IJ.getLog(), r != null);
		assertTrue("the overlay image should be open", overlay != null);
		return r;
	}

	@Test
	public void recoversAKnownTransformAndShowsTheOverlayAndResults() throws Exception {
		Native.ensureLoaded();
		ImagePlus[] p = pair();
		float[] fixedBefore = ((float[]) p[0].getProcessor().getPixels()).clone();
		Registration r = registerByMacro(p, "");
		double err = cornerError(r.matrix, TRUTH, 200, 180);
		assertTrue("corner error " + err + " px", err < 2.0);
		assertTrue(r.reason, r.passed);
		assertEquals("mi", r.method);
		assertArrayEquals("inputs untouched", fixedBefore, (float[]) p[0].getProcessor().getPixels(), 0f);

		assertEquals(2, overlay.getNChannels());
		assertEquals(0.5, overlay.getCalibration().pixelWidth, 0);
		assertArrayEquals("channel 1 is the fixed image", fixedBefore, (float[]) overlay.getStack().getPixels(1), 0f);
		ResultsTable rt = ResultsTable.getResultsTable(RegisterMultimodal.TABLE);
		assertTrue(rt != null && rt.size() >= 1);
		assertEquals("TRUTH rotates fixed → moving by +8°", 8.0, rt.getValue("Angle (deg)", rt.size() - 1), 0.5);
		assertEquals("pass", rt.getStringValue("Quality", rt.size() - 1));
	}

	/**
	 * A macro that names no rotation option searches every rotation, as the dialog and the CLI
	 * do by default: a moving image turned by 180° is found. (Before, macros silently skipped
	 * the search unless they wrote the undocumented key "any".)
	 */
	/**
	 * A torn section: inside a triangle (a fifth of the fixed image) the tissue moved by
	 * (9, 6) px, the rest by (−14, −10) px and 3°. A polygon ROI around the triangle on the
	 * fixed image must make the registration follow the triangle (its shape, not its bounding
	 * box, and the search must start where the ROI lies, not at the image centre).
	 */
	@Test
	public void aPolygonRoiRestrictsTheRegistrationToItsShape() throws Exception {
		ImagePlus big = scene("big", 600, 600, 5);
		ij.process.ImageProcessor bp = big.getProcessor();
		bp.setInterpolationMethod(ij.process.ImageProcessor.BILINEAR);
		int n = 240;
		FloatProcessor fixed = new FloatProcessor(n, n), moving = new FloatProcessor(n, n);
		double a = 0.05, c = Math.cos(a), s = Math.sin(a), cx = (n - 1) / 2.0;
		for (int y = 0; y < n; y++)
			for (int x = 0; x < n; x++) {
				fixed.setf(x, y, (float) bp.getInterpolatedValue(x + 150, y + 150));
				double px = x - 9, py = y - 6; // the triangle's piece: moving = fixed + (9, 6)
				if (!(py - 90 >= px && px >= 0)) { // else the rest: rotated about the centre, shifted
					double ux = x + 14 - cx, uy = y + 10 - cx;
					px = c * ux + s * uy + cx;
					py = -s * ux + c * uy + cx;
				}
				moving.setf(x, y, (float) (1 - Math.pow(2 * bp.getInterpolatedValue(px + 150, py + 150) - 1, 2)));
			}
		ImagePlus[] p = {new ImagePlus("torn-fixed", fixed), new ImagePlus("torn-moving", moving)};
		double[] piece = {1, 0, 9, 0, 1, 6};
		p[0].setRoi(new ij.gui.PolygonRoi(new float[] {-10, 150, -10}, new float[] {80, 240, 240}, Roi.POLYGON));
		Registration r = registerByMacro(p, "small_rotation_only use_rois");
		double err = cornerError(r.matrix, piece, n, n);
		assertTrue("with the polygon ROI: corner error " + err + " px, found " + java.util.Arrays.toString(r.matrix) + " " + r.reason, err < 2.0);
		assertTrue(r.reason, r.passed);
		Registration whole = registerByMacro(p, "small_rotation_only");
		assertTrue("without the ROI the larger piece wins", cornerError(whole.matrix, piece, n, n) > 5.0);
	}

	@Test
	public void macroDefaultSearchesEveryRotation() throws Exception {
		ImagePlus[] p = pair();
		ij.process.ImageProcessor turned = p[1].getProcessor().duplicate();
		turned.flipHorizontal();
		turned.flipVertical(); // 180° about the image centre: q → (w-1-qx, h-1-qy)
		ImagePlus moving = new ImagePlus("moving-turned", turned); // a title of its own: earlier tests leave "moving" open
		moving.setCalibration(p[1].getCalibration());
		p[1] = moving;
		Registration r = registerByMacro(p, "");
		double[] truth = {-TRUTH[0], -TRUTH[1], 199 - TRUTH[2], -TRUTH[3], -TRUTH[4], 179 - TRUTH[5]};
		double err = cornerError(r.matrix, truth, 200, 180);
		assertTrue("180°-turned moving image: corner error " + err + " px, found " + java.util.Arrays.toString(r.matrix) + " expected " + java.util.Arrays.toString(truth) + " " + r.reason, err < 2.0);
	}

	/**
	 * Pixel sizes that differ (fixed 0.5 µm, moving 1 µm) with a rigid motion in µm: a rigid
	 * registration finds it, and the pixel matrix carries the 0.5 scale. (Before, the plugin did
	 * not pass the calibration and a rigid search in pixels failed.)
	 */
	@Test
	public void rigidRegistrationWorksInMicronsWhenPixelSizesDiffer() throws Exception {
		ImagePlus big = scene("big", 400, 380, 11);
		ImagePlus fixed = ApplyTransform.warp(big, new double[] {1, 0, 100, 0, 1, 100}, 200, 180);
		// fixed px → moving px: 0.5·R(8°) about the centre plus a small shift
		double a = Math.toRadians(8), c = 0.5 * Math.cos(a), s = 0.5 * Math.sin(a), cx = 99.5, cy = 89.5;
		double[] truth = {c, -s, cx - c * cx + s * cy + 2, s, c, cy - s * cx - c * cy - 1.5};
		double[] inv = Native.mapPoints(truth, new double[] {0, 0, 1, 0, 0, 1}, true);
		double[] m = {inv[2] - inv[0], inv[4] - inv[0], inv[0] + 100, inv[3] - inv[1], inv[5] - inv[1], inv[1] + 100};
		ImagePlus moving = ApplyTransform.warp(big, m, 200, 180);
		fixed.setTitle("fixed-half-micron");
		moving.setTitle("moving-one-micron");
		fixed.getCalibration().pixelWidth = fixed.getCalibration().pixelHeight = 0.5;
		fixed.getCalibration().setUnit("micron");
		moving.getCalibration().pixelWidth = moving.getCalibration().pixelHeight = 1.0;
		moving.getCalibration().setUnit("micron");
		Registration r = registerByMacro(new ImagePlus[] {fixed, moving}, "small_rotation_only");
		double err = cornerError(r.matrix, truth, 200, 180);
		assertTrue("rigid in µm across pixel sizes: corner error " + err + " px, found " + java.util.Arrays.toString(r.matrix), err < 2.0);
	}

	/** Calibrated images (0.5 µm): the Results row has the translation in µm from the library. */
	@Test
	public void resultsRowHasTheCalibratedTranslation() throws Exception {
		ImagePlus[] p = pair();
		for (ImagePlus imp : p) imp.setTitle(imp.getTitle() + "-calibrated");
		Registration r = registerByMacro(p, "small_rotation_only");
		assertEquals(0.5 * r.tx, r.translationCalibrated[0], 1e-9);
		assertEquals(0.5 * r.ty, r.translationCalibrated[1], 1e-9);
		ResultsTable rt = ResultsTable.getResultsTable(RegisterMultimodal.TABLE);
		String unit = p[1].getCalibration().getUnit();
		assertEquals(0.5 * r.tx, rt.getValue("Tx (" + unit + ")", rt.size() - 1), 1e-9);
		assertEquals(r.tx, rt.getValue("Tx (px)", rt.size() - 1), 1e-9);
	}

	/** Uncalibrated images: no duplicate "Tx (pixel)" columns; one Score column with its measure. */
	@Test
	public void resultsRowHasOneScoreColumnAndNoPixelDuplicates() throws Exception {
		ImagePlus[] p = pair();
		for (ImagePlus imp : p) {
			imp.setCalibration(new ij.measure.Calibration());
			imp.setTitle(imp.getTitle() + "-uncalibrated");
		}
		ResultsTable before = ResultsTable.getResultsTable(RegisterMultimodal.TABLE);
		if (before != null) before.reset();
		Registration r = registerByMacro(p, "small_rotation_only");
		ResultsTable rt = ResultsTable.getResultsTable(RegisterMultimodal.TABLE);
		String headings = String.join(",", rt.getHeadings());
		assertTrue(headings, !headings.contains("(pixel)") && !headings.contains("Score ("));
		assertEquals(r.score, rt.getValue("Score", rt.size() - 1), 1e-9);
		assertEquals("nmi", rt.getStringValue("Measure", rt.size() - 1));
	}

	/**
	 * Closing the moving image while it is being registered gives a clear message and no
	 * Results row (before: an IllegalArgumentException stack trace from ImageStack, and a row).
	 */
	@Test
	public void closingAnImageDuringRegistrationGivesAMessage() throws Exception {
		ImagePlus big = scene("big-close", 900, 900, 5);
		final ImagePlus fixed = ApplyTransform.warp(big, new double[] {1, 0, 100, 0, 1, 100}, 700, 700);
		final ImagePlus moving = ApplyTransform.warp(big, new double[] {0.99, -0.1, 110, 0.1, 0.99, 90}, 700, 700);
		fixed.setTitle("fixed-to-keep");
		moving.setTitle("moving-to-close");
		ResultsTable rt = ResultsTable.getResultsTable(RegisterMultimodal.TABLE);
		final int rowsBefore = rt == null ? 0 : rt.size();
		boolean batch = ij.macro.Interpreter.batchMode;
		ij.macro.Interpreter.batchMode = true;
		TestSupport.LogCapture capture = new TestSupport.LogCapture();
		final Throwable[] thrown = new Throwable[1];
		long started = System.nanoTime(), took;
		try {
			fixed.show();
			moving.show();
			Thread run = new Thread(new Runnable() {
				@Override
				public void run() {
					try {
						IJ.redirectErrorMessages(true);
						TestSupport.macro(null, "Register Multimodal Images...", "fixed=fixed-to-keep moving=moving-to-close model=[] method=mi transform=rigid");
					}
					catch (RuntimeException aborted) {
						// the error aborts the macro: expected
					}
					catch (Throwable t) {
						thrown[0] = t;
					}
				}
			});
			run.start();
			Thread.sleep(400);
			moving.changes = false;
			moving.close();
			run.join(120000);
			took = System.nanoTime() - started;
		}
		finally {
			IJ.redirectErrorMessages(false);
			capture.close();
			ij.macro.Interpreter.batchMode = batch;
		}
		org.junit.Assume.assumeTrue("the registration ended before the image was closed", took > 600_000_000L);
		assertTrue("no exception: " + thrown[0], thrown[0] == null);
		String log = capture.text();
		assertTrue("a clear message: " + log, log.contains("was closed while it was being registered"));
		rt = ResultsTable.getResultsTable(RegisterMultimodal.TABLE);
		assertEquals("no Results row for a closed image", rowsBefore, rt == null ? 0 : rt.size());
	}

	/** A stack: the registration says that only its current plane was used. */
	@Test
	public void stackRegistrationSaysWhichPlaneWasUsed() throws Exception {
		ImagePlus[] p = pair();
		ij.ImageStack stack = new ij.ImageStack(200, 180);
		for (int z = 0; z < 3; z++) stack.addSlice(p[1].getProcessor().duplicate());
		ImagePlus moving = new ImagePlus("moving-stack", stack);
		moving.setCalibration(p[1].getCalibration());
		p[1] = moving;
		p[0].setTitle("fixed-for-stack");
		String log;
		try (TestSupport.LogCapture capture = new TestSupport.LogCapture()) {
			registerByMacro(p, "small_rotation_only");
			log = capture.text();
		}
		assertTrue(log, log.contains("moving-stack is a stack; only its current plane (z=" + moving.getSlice() + "/3"));
	}

	/** A misspelt or outdated macro key stops the command with a message instead of being ignored. */
	@Test
	public void unknownMacroKeyIsRefusedWithAMessage() throws Exception {
		ImagePlus[] p = pair();
		RegisterMultimodal.last = null;
		boolean batch = ij.macro.Interpreter.batchMode;
		ij.macro.Interpreter.batchMode = true;
		TestSupport.LogCapture capture = new TestSupport.LogCapture();
		IJ.redirectErrorMessages(true);
		try {
			p[0].show();
			p[1].show();
			TestSupport.macro(null, "Register Multimodal Images...", "fixed=fixed moving=moving model=[] method=mi transform=rigid any_rotation");
		}
		catch (RuntimeException aborted) {
			// IJ.error aborts the macro: expected
		}
		finally {
			IJ.redirectErrorMessages(false);
			capture.close();
			ij.macro.Interpreter.batchMode = batch;
		}
		String log = capture.text();
		assertTrue("no registration with an unknown key", RegisterMultimodal.last == null);
		assertTrue("the message names the key: " + log, log.contains("Unknown macro option any_rotation"));
		assertTrue("and lists the valid ones: " + log, log.contains("small_rotation_only"));
	}

	@Test
	public void exportsBigWarpFilesThatRefitTheTransform() throws Exception {
		ImagePlus[] p = pair();
		File out = tmp.newFolder("bigwarp");
		Registration r = registerByMacro(p, "export=[" + out.getPath() + "]");
		List<String> lines = new ArrayList<String>();
		BufferedReader in = new BufferedReader(new InputStreamReader(new FileInputStream(new File(out, "bigwarp-landmarks.csv")), StandardCharsets.UTF_8));
		for (String line; (line = in.readLine()) != null;) lines.add(line);
		in.close();
		assertTrue("a grid of at least 9 landmarks", lines.size() >= 9);
		for (int i = 0; i < lines.size(); i++) {
			String[] f = lines.get(i).split(",");
			assertEquals("6 columns", 6, f.length);
			for (String field : f) assertTrue("quoted: " + field, field.startsWith("\"") && field.endsWith("\""));
			assertEquals("\"Pt-" + i + "\"", f[0]);
			assertEquals("\"true\"", f[1]);
			double[] v = new double[4];
			for (int k = 0; k < 4; k++) {
				String s = f[k + 2].substring(1, f[k + 2].length() - 1);
				assertTrue("Java-style double: " + s, s.contains(".") || s.contains("E"));
				v[k] = Double.parseDouble(s);
			}
			// moving first, world units (0.5 µm pixels): the transform maps fixed → moving.
			double fx = v[2] / 0.5, fy = v[3] / 0.5;
			double mx = r.matrix[0] * fx + r.matrix[1] * fy + r.matrix[2], my = r.matrix[3] * fx + r.matrix[4] * fy + r.matrix[5];
			assertEquals(mx * 0.5, v[0], 1e-6);
			assertEquals(my * 0.5, v[1], 1e-6);
		}
		String json = new String(java.nio.file.Files.readAllBytes(new File(out, "bigwarp-landmarks.json").toPath()), StandardCharsets.UTF_8);
		assertTrue(json.contains("\"type\": \"Rotation\"") && json.contains("\"BigWarpLandmarks\""));
		// Reading the exported landmarks back (as Apply Transform does) gives the same transform.
		TransformPlan back = TransformPlan.read(new File(out, "bigwarp-landmarks.json").getPath(), r.moving, r.fixed, 0, 0);
		assertArrayEquals(r.matrix, back.matrix, 1e-6);
		assertEquals(200, back.width);
		assertEquals(0.5, back.pixelWidth, 1e-12);
		assertTrue(new File(out, "ngff-affine.json").isFile() && new File(out, "transform.json").isFile());
	}

	@Test
	public void transfersRoisFromMovingToFixed() throws Exception {
		ImagePlus[] p = pair();
		RoiManager rm = RoiManager.getRoiManager();
		rm.reset();
		rm.addRoi(new Roi(50, 40, 30, 20));
		Registration r = registerByMacro(p, "transfer");
		assertEquals(2, rm.getCount());
		Roi mapped = rm.getRoi(1);
		assertTrue(mapped.getName(), mapped.getName().endsWith("(on fixed)"));
		double[] expected = Native.mapPoints(r.matrix, new double[] {50, 40}, true);
		// the mapped corner: moving (50, 40) seen in fixed coordinates
		assertEquals(expected[0], mapped.getFloatPolygon().xpoints[0], 1e-3);
		assertEquals(expected[1], mapped.getFloatPolygon().ypoints[0], 1e-3);
		// and it is where the truth puts it: TRUTH(fixed point) = (50, 40)
		double fx = mapped.getFloatPolygon().xpoints[0], fy = mapped.getFloatPolygon().ypoints[0];
		assertEquals(50, TRUTH[0] * fx + TRUTH[1] * fy + TRUTH[2], 2.0);
		assertEquals(40, TRUTH[3] * fx + TRUTH[4] * fy + TRUTH[5], 2.0);
		rm.reset();
	}

	@Test
	public void transfersRoisBothWaysWithoutRemappingTheNewOnes() throws Exception {
		ImagePlus[] p = pair();
		RoiManager rm = RoiManager.getRoiManager();
		rm.reset();
		rm.addRoi(new Roi(50, 40, 30, 20));
		Registration r = registerByMacro(p, "transfer backward");
		assertEquals("the original, its image on fixed, its image on moving", 3, rm.getCount());
		Roi onMoving = rm.getRoi(2);
		assertTrue(onMoving.getName(), onMoving.getName().endsWith("(on moving)"));
		// a ROI drawn on the fixed image at (50, 40) lies at TRUTH(50, 40) on the moving one
		assertEquals(TRUTH[0] * 50 + TRUTH[1] * 40 + TRUTH[2], onMoving.getFloatPolygon().xpoints[0], 2.0);
		assertEquals(TRUTH[3] * 50 + TRUTH[4] * 40 + TRUTH[5], onMoving.getFloatPolygon().ypoints[0], 2.0);
		rm.reset();
	}

	@Test
	public void showsTheCoMIRsOfBothImagesWithTheModel() throws Exception {
		ImagePlus[] p = pair();
		File model = new File(System.getProperty("comir.models"), "ihc-hdab-small.safetensors");
		ImagePlus fixedComir, movingComir;
		boolean batch = ij.macro.Interpreter.batchMode;
		ij.macro.Interpreter.batchMode = true;
		try {
			p[0].setTitle("cf");
			p[1].setTitle("cm");
			p[0].show();
			p[1].show();
			TestSupport.macro(null, "Register Multimodal Images...", "fixed=cf moving=cm model=[" + model + "] method=amd transform=rigid show");
			fixedComir = WindowManager.getImage("CoMIR of cf");
			movingComir = WindowManager.getImage("CoMIR of cm");
		}
		finally {
			ij.macro.Interpreter.batchMode = batch;
		}
		assertTrue("no CoMIRs shown; log: " + IJ.getLog(), fixedComir != null && movingComir != null);
		assertEquals(200, fixedComir.getWidth());
		assertEquals(32, fixedComir.getBitDepth());
		// Each image went through its own network: the same image through the other one differs.
		ImagePlus other = ComputeComir.compute(p[0], model.getPath(), "dab");
		float[] a = (float[]) fixedComir.getProcessor().getPixels(), b = (float[]) other.getProcessor().getPixels();
		double diff = 0;
		for (int i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
		assertTrue("fixed went through the hematoxylin network", diff > 1e-3);
		ImagePlus same = ComputeComir.compute(p[0], model.getPath(), "hematoxylin");
		assertArrayEquals(a, (float[]) same.getProcessor().getPixels(), 1e-5f);
	}

	@Test
	public void badInputGivesAMessageNotACrash() throws Exception {
		ImagePlus[] p = pair();
		try {
			RegisterMultimodal.register(p[0], p[1], new File(tmp.getRoot(), "missing.safetensors").getPath(), "auto", "rigid", false, false);
			fail("expected an error");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("missing.safetensors"));
		}
		try {
			RegisterMultimodal.register(p[0], p[1], "", "sift", "rigid", false, false);
			fail("expected an error");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("need a CoMIR model"));
		}
		ImagePlus tiny = IJ.createImage("tiny", "8-bit", 4, 4, 1);
		try {
			RegisterMultimodal.register(tiny, p[1], "", "mi", "rigid", false, false);
			fail("expected an error");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("too small"));
		}
	}
}
