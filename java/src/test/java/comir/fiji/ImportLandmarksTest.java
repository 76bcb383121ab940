package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import ij.ImagePlus;
import ij.WindowManager;
import ij.measure.ResultsTable;
import ij.macro.Interpreter;
import java.io.File;
import java.util.Locale;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.junit.rules.Timeout;

/** Import BigWarp Landmarks: hand-written BigWarp files in, fitted transforms checked against the truth. */
public class ImportLandmarksTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	@Rule
	public Timeout timeout = Timeout.seconds(180);

	/** Fixed pixel positions of the landmarks (as a user would click them: irregular). */
	static final double[][] POINTS = {{20, 15}, {170, 30}, {40, 160}, {150, 140}, {100, 90}, {60, 70}};

	/** BigWarp CSV rows for TRUTH: moving world point first, pixel centres at index × pixel size. */
	private static String csv(double fixedPixel, double movingPixel, int outlier, boolean outlierActive) {
		StringBuilder sb = new StringBuilder();
		for (int i = 0; i < POINTS.length; i++) {
			double[] m = Native.mapPoints(RegisterTest.TRUTH, POINTS[i], false);
			if (i == outlier) m[0] += 30;
			sb.append(String.format(Locale.ROOT, "\"Pt-%d\",\"%s\",\"%.12f\",\"%.12f\",\"%.12f\",\"%.12f\"\n", i,
				i == outlier && !outlierActive ? "false" : "true", m[0] * movingPixel, m[1] * movingPixel,
				POINTS[i][0] * fixedPixel, POINTS[i][1] * fixedPixel));
		}
		return sb.toString();
	}

	private static void assertMatrix(double[] expected, double[] actual, double tol) {
		for (int i = 0; i < 6; i++) assertEquals("matrix entry " + i, expected[i], actual[i], tol);
	}

	@Test
	public void macroFitsHandPlacedLandmarksAndAlignsTheMovingImage() throws Exception {
		ImagePlus[] p = RegisterTest.pair(); // calibrated 0.5 micron/pixel, moving = fixed through TRUTH
		p[0].setTitle("lm-fixed"); // titles no other test uses: results are looked up by title
		p[1].setTitle("lm-moving");
		File file = TestSupport.write(tmp.newFile("landmarks.csv"), csv(0.5, 0.5, -1, true));
		ResultsTable before = ResultsTable.getResultsTable(RegisterMultimodal.TABLE);
		int rows = before == null ? 0 : before.size();
		RegisterMultimodal.last = null;
		ImagePlus aligned, overlay;
		boolean batch = Interpreter.batchMode;
		Interpreter.batchMode = true; // as a headless macro: images live in the batch-mode list
		try {
			p[0].show();
			p[1].show();
			TestSupport.macro(null, "Import BigWarp Landmarks...", "landmarks=[" + file + "] fixed=lm-fixed moving=lm-moving transform=rigid overlay aligned");
			aligned = WindowManager.getImage("lm-moving-aligned-to-lm-fixed");
			overlay = WindowManager.getImage("Registered lm-moving on lm-fixed");
		}
		finally {
			Interpreter.batchMode = batch;
		}
		Registration r = RegisterMultimodal.last;
		assertTrue("no registration from the import; log: " + ij.IJ.getLog(), r != null && "landmarks".equals(r.method));
		assertEquals("rigid", r.kind);
		assertMatrix(RegisterTest.TRUTH, r.matrix, 1e-9);
		assertTrue(r.passed);
		assertEquals(0, r.score, 1e-9); // exact landmarks: no residual
		assertEquals(POINTS.length, r.inliers);
		assertEquals(8, r.angleDegrees, 1e-9);
		ResultsTable rt = ResultsTable.getResultsTable(RegisterMultimodal.TABLE);
		assertEquals(rows + 1, rt.size());
		assertEquals("landmarks", rt.getStringValue("Method", rt.size() - 1));

		// The aligned moving image lies on the fixed one (inside, away from the resampled border).
		assertTrue("no aligned image; log: " + ij.IJ.getLog(), aligned != null);
		assertTrue("no overlay", overlay != null);
		assertEquals(2, overlay.getNChannels());
		assertEquals("one point per landmark", POINTS.length, overlay.getOverlay().get(0).getFloatPolygon().npoints);
		assertEquals(p[0].getWidth(), aligned.getWidth());
		assertEquals(0.5, aligned.getCalibration().pixelWidth, 0);
		double diff = 0, range = p[0].getStatistics().max - p[0].getStatistics().min;
		for (int y = 30; y < 150; y++)
			for (int x = 30; x < 170; x++) diff = Math.max(diff, Math.abs(aligned.getProcessor().getf(x, y) - p[0].getProcessor().getf(x, y)));
		assertTrue("aligned differs from fixed by " + diff + " of " + range, diff < 0.1 * range);
	}

	@Test
	public void calibrationsConvertWorldUnitsAndTheJsonNamesTheType() throws Exception {
		ImagePlus[] p = RegisterTest.pair();
		p[1].getCalibration().pixelWidth = p[1].getCalibration().pixelHeight = 0.25;
		StringBuilder moving = new StringBuilder(), fixed = new StringBuilder();
		for (int i = 0; i < POINTS.length; i++) {
			double[] m = Native.mapPoints(RegisterTest.TRUTH, POINTS[i], false);
			moving.append(i > 0 ? "," : "").append(String.format(Locale.ROOT, "[%.12f,%.12f]", m[0] * 0.25, m[1] * 0.25));
			fixed.append(i > 0 ? "," : "").append(String.format(Locale.ROOT, "[%.12f,%.12f]", POINTS[i][0] * 0.5, POINTS[i][1] * 0.5));
		}
		String json = "{\"type\":\"Similarity\",\"landmarks\":{\"type\":\"BigWarpLandmarks\",\"numDimensions\":2,"
			+ "\"movingPoints\":[" + moving + "],\"fixedPoints\":[" + fixed + "]}}";
		File file = TestSupport.write(tmp.newFile("landmarks.json"), json);
		Registration r = ImportLandmarks.fit(file.getPath(), p[0], p[1], "from file");
		assertEquals("similarity", r.kind);
		assertMatrix(RegisterTest.TRUTH, r.matrix, 1e-9);
		assertEquals(1, r.scale, 1e-9);
	}

	@Test
	public void aMisplacedLandmarkFailsTheQualityUnlessItIsInactive() throws Exception {
		ImagePlus[] p = RegisterTest.pair();
		File bad = TestSupport.write(tmp.newFile("bad.csv"), csv(0.5, 0.5, 2, true));
		Registration r = ImportLandmarks.fit(bad.getPath(), p[0], p[1], "rigid");
		assertFalse(r.passed);
		assertTrue(r.reason, r.reason.contains("disagree"));
		assertTrue("RMS residual " + r.score, r.score > 4); // one of 6 points off by 30 px
		File inactive = TestSupport.write(tmp.newFile("inactive.csv"), csv(0.5, 0.5, 2, false));
		Registration ok = ImportLandmarks.fit(inactive.getPath(), p[0], p[1], "rigid");
		assertTrue(ok.passed);
		assertEquals(POINTS.length - 1, ok.inliers);
		assertMatrix(RegisterTest.TRUTH, ok.matrix, 1e-9);
	}

	@Test
	public void unusableFilesGiveMessagesNotCrashes() throws Exception {
		ImagePlus[] p = RegisterTest.pair();
		String[][] cases = {
			{"\"Pt-0\",\"true\",\"1\",\"2\",\"3\",\"4\"\n", "at least"},
			{"\"Pt-0\",\"true\",\"1\",\"2\"\n", "column"},
			{"\"Pt-0\",\"true\",\"x\",\"2\",\"3\",\"4\"\n", "number"},
			{"{\"type\":\"Affine\"}", "landmarks"},
		};
		for (String[] c : cases) {
			File f = TestSupport.write(tmp.newFile(), c[0]);
			try {
				ImportLandmarks.fit(f.getPath(), p[0], p[1], "affine");
				fail("accepted " + c[0]);
			}
			catch (ComirException e) {
				assertTrue(c[1] + " expected in: " + e.getMessage(), e.getMessage().toLowerCase(Locale.ROOT).contains(c[1]));
			}
		}
		try {
			ImportLandmarks.fit(new File(tmp.getRoot(), "missing.csv").getPath(), p[0], p[1], "rigid");
			fail("accepted a missing file");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("missing.csv"));
		}
	}
}
