package comir.fiji;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import ij.IJ;
import ij.ImagePlus;
import ij.Menus;
import ij.process.FloatProcessor;
import ij.process.ShortProcessor;
import java.io.File;
import org.junit.Assume;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.junit.rules.Timeout;

/** Apply Transform driven as a macro would, checked pixel for pixel against the Rust CLI. */
public class ApplyTransformTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	/** A command that unexpectedly opens a modal dialog fails the test instead of hanging it. */
	@Rule
	public Timeout timeout = Timeout.seconds(180);

	/** Rotation by 17° about (40, 30) followed by a shift, fixed → moving. */
	private static final double[] ROTATION;
	static {
		double a = Math.toRadians(17), c = Math.cos(a), s = Math.sin(a);
		ROTATION = new double[] {c, -s, 40 - c * 40 + s * 30 + 3.25, s, c, 30 - s * 40 - c * 30 - 1.5};
	}

	@Test
	public void commandIsInstalledFromThePluginJar() {
		IJ.run("Close All"); // initialises ImageJ's menus from plugins.dir (build/fiji)
		assertEquals("comir.fiji.ApplyTransform(\"\")", Menus.getCommands().get("Apply Transform..."));
	}

	private ImagePlus syntheticShortImage() {
		ShortProcessor ip = new ShortProcessor(97, 71);
		for (int y = 0; y < 71; y++)
			for (int x = 0; x < 97; x++)
				ip.set(x, y, (x * 523 + y * 1021 + (x * y) % 97 * 300) % 65536);
		return new ImagePlus("synthetic16.tif", ip);
	}

	@Test
	public void sixteenBitMatchesTheCli() throws Exception {
		ImagePlus imp = syntheticShortImage();
		File input = new File(tmp.getRoot(), "in.tif");
		IJ.saveAsTiff(imp, input.getPath());
		File t = TestSupport.writeTransform(tmp.getRoot(), "t.json", ROTATION, null);
		File cliOut = new File(tmp.getRoot(), "cli.tif");
		TestSupport.runCli("apply", "--transform", t.getPath(), "--input", input.getPath(), "--output", cliOut.getPath());

		short[] before = ((short[]) imp.getProcessor().getPixels()).clone();
		ImagePlus result = TestSupport.runCommand(imp, "Apply Transform...", "transform=[" + t.getPath() + "] width=0 height=0");
		ImagePlus expected = IJ.openImage(cliOut.getPath());
		assertEquals(16, result.getBitDepth());
		assertArrayEquals((short[]) expected.getProcessor().getPixels(), (short[]) result.getProcessor().getPixels());
		assertArrayEquals("the input image must not change", before, (short[]) imp.getProcessor().getPixels());
		// Not trivially equal: the rotation really moved pixels, and corners fell outside (0).
		assertTrue(result.getProcessor().get(50, 35) != imp.getProcessor().get(50, 35));
		assertEquals(0, result.getProcessor().get(96, 70));
	}

	@Test
	public void rgbDemoImageMatchesTheCli() throws Exception {
		File demo = new File(System.getProperty("comir.demo", ".deps/demo"), "ihc.png");
		Assume.assumeTrue("demo data not provisioned: " + demo, demo.isFile());
		File t = TestSupport.writeTransform(tmp.getRoot(), "t.json", ROTATION, "{\"width\":300,\"height\":200}");
		File cliOut = new File(tmp.getRoot(), "cli.tif");
		TestSupport.runCli("apply", "--transform", t.getPath(), "--input", demo.getPath(), "--output", cliOut.getPath());

		ImagePlus imp = IJ.openImage(demo.getPath());
		ImagePlus result = TestSupport.runCommand(imp, "Apply Transform...", "transform=[" + t.getPath() + "]");
		ImagePlus expected = IJ.openImage(cliOut.getPath());
		assertEquals(24, result.getBitDepth());
		assertEquals(300, result.getWidth());
		assertEquals(200, result.getHeight());
		assertArrayEquals((int[]) expected.getProcessor().getPixels(), (int[]) result.getProcessor().getPixels());
	}

	@Test
	public void hyperstackKeepsDimensionsAndTakesTheFixedCalibration() throws Exception {
		ImagePlus imp = IJ.createHyperStack("hs", 20, 10, 2, 3, 1, 32);
		for (int i = 1; i <= 6; i++) {
			FloatProcessor ip = (FloatProcessor) imp.getStack().getProcessor(i);
			for (int y = 0; y < 10; y++)
				for (int x = 0; x < 20; x++)
					ip.setf(x, y, i * 1000 + y * 20 + x + 0.25f);
		}
		// Integer shift by (2, 1): output (x, y) samples input (x + 2, y + 1) exactly.
		File t = TestSupport.writeTransform(tmp.getRoot(), "shift.json", new double[] {1, 0, 2, 0, 1, 1},
			"{\"width\":20,\"height\":10,\"calibration\":{\"pixel_width\":0.5,\"pixel_height\":0.5,\"unit\":\"micron\"}}");
		ImagePlus result = TestSupport.runCommand(imp, "Apply Transform...", "transform=[" + t.getPath() + "]");
		assertEquals(2, result.getNChannels());
		assertEquals(3, result.getNSlices());
		assertEquals(0.5, result.getCalibration().pixelWidth, 0);
		assertEquals("micron", result.getCalibration().getUnit());
		for (int i = 1; i <= 6; i++) {
			FloatProcessor ip = (FloatProcessor) result.getStack().getProcessor(i);
			assertEquals(i * 1000 + 1 * 20 + 2 + 0.25f, ip.getf(0, 0), 0);
			assertEquals(i * 1000 + 9 * 20 + 19 + 0.25f, ip.getf(17, 8), 0);
			assertEquals("outside the moving image", 0f, ip.getf(19, 9), 0);
		}
	}

	@Test
	public void missingTransformFileGivesAnErrorAndNoImage() {
		ImagePlus imp = syntheticShortImage();
		try {
			ApplyTransform.apply(imp, new File(tmp.getRoot(), "nope.json").getPath(), null, 0, 0);
			fail("expected an error");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("nope.json"));
		}
	}

	/**
	 * A pixel size of 0 is refused by the library, by name, as Register refuses it (before,
	 * Apply Transform alone silently took it for 1 and placed the result on a wrong grid).
	 */
	@Test
	public void aZeroPixelSizeIsRefusedAsByRegister() throws Exception {
		ImagePlus imp = syntheticShortImage();
		imp.getCalibration().pixelWidth = 0;
		File t = TestSupport.writeTransform(tmp.getRoot(), "shift.json", new double[] {1, 0, 2, 0, 1, 1}, null);
		try {
			ApplyTransform.apply(imp, t.getPath(), null, 0, 0);
			fail("a pixel width of 0 was accepted");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("pixel sizes must be positive numbers (got 0"));
			assertEquals("parameter", e.kind());
		}
	}

	/**
	 * BigWarp landmarks when the two images have different pixel sizes: a 0.5 µm fixed image
	 * and a 1 µm moving image of the same field, landmarks at the same world positions (the
	 * identity in µm). Fixed pixel i lies at moving pixel i/2; the result takes the fixed grid.
	 * (Before: the moving calibration was used for both sides, the result was 1 µm and half size.)
	 */
	@Test
	public void bigWarpLandmarksUseEachImagesOwnPixelSize() throws Exception {
		FloatProcessor mp = new FloatProcessor(50, 40);
		for (int y = 0; y < 40; y++)
			for (int x = 0; x < 50; x++)
				mp.setf(x, y, x * 3 + y * 100 + (x * y) % 7);
		ImagePlus moving = new ImagePlus("moving-1um", mp);
		moving.getCalibration().pixelWidth = moving.getCalibration().pixelHeight = 1.0;
		moving.getCalibration().setUnit("micron");
		ImagePlus fixed = new ImagePlus("fixed-0.5um", new FloatProcessor(100, 80));
		fixed.getCalibration().pixelWidth = fixed.getCalibration().pixelHeight = 0.5;
		fixed.getCalibration().setUnit("micron");
		StringBuilder csv = new StringBuilder();
		double[][] world = {{0, 0}, {40, 0}, {0, 30}, {40, 30}, {20, 10}};
		for (int i = 0; i < world.length; i++)
			csv.append(String.format(java.util.Locale.US, "\"Pt-%d\",\"true\",\"%f\",\"%f\",\"%f\",\"%f\"%n",
				i, world[i][0], world[i][1], world[i][0], world[i][1]));
		File landmarks = TestSupport.write(new File(tmp.getRoot(), "landmarks.csv"), csv.toString());

		boolean batch = ij.macro.Interpreter.batchMode;
		ij.macro.Interpreter.batchMode = true; // images "open" without windows, as in a headless macro
		fixed.show();
		moving.show();
		try {
			TestSupport.macro(moving, "Apply Transform...", "transform=[" + landmarks.getPath() + "] fixed=fixed-0.5um width=0 height=0");
			ImagePlus result = ij.WindowManager.getImage("moving-1um-transformed");
			assertTrue("Apply Transform showed its result", result != null);
			assertEquals("the fixed image's width", 100, result.getWidth());
			assertEquals(80, result.getHeight());
			assertEquals("the fixed image's pixel size", 0.5, result.getCalibration().pixelWidth, 1e-12);
			assertEquals("micron", result.getCalibration().getUnit());
			ij.process.ImageProcessor ip = result.getProcessor();
			for (int y = 0; y < 40; y += 3)
				for (int x = 0; x < 50; x += 3)
					assertEquals("fixed (" + 2 * x + "," + 2 * y + ") shows moving (" + x + "," + y + ")",
						mp.getf(x, y), ip.getf(2 * x, 2 * y), 1e-3);
			// Without the fixed image the landmarks cannot be placed: refused, with the reason.
			try {
				ApplyTransform.apply(moving, landmarks.getPath(), null, 0, 0);
				fail("landmarks without a fixed image must be refused");
			}
			catch (ComirException e) {
				assertTrue(e.getMessage(), e.getMessage().contains("fixed (target) image"));
			}
		}
		finally {
			fixed.changes = moving.changes = false;
			fixed.close();
			moving.close();
			ij.macro.Interpreter.batchMode = batch;
		}
	}
}
