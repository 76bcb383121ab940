package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import ij.IJ;
import ij.ImagePlus;
import ij.io.Opener;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.junit.rules.Timeout;

/** Batch Register as a macro on a folder of saved pairs: outputs per pair, a summary, errors reported. */
public class BatchRegisterTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	@Rule
	public Timeout timeout = Timeout.seconds(180);

	@Test
	public void registersEveryPairOfAFolderAndReportsTheBrokenOne() throws Exception {
		File in = tmp.newFolder("pairs"), out = new File(tmp.getRoot(), "results");
		ImagePlus[] p = RegisterTest.pair();
		IJ.saveAsTiff(p[0], new File(in, "good_fixed.tif").getPath());
		IJ.saveAsTiff(p[1], new File(in, "good_moving.tif").getPath());
		TestSupport.write(new File(in, "broken_fixed.tif"), "not an image");
		TestSupport.write(new File(in, "broken_moving.tif"), "not an image");

		TestSupport.macro(null, "Batch Register...", "input=[" + in + "] fixed=_fixed.tif moving=_moving.tif model=[] method=mi transform=rigid output=[" + out + "]");

		List<String> lines = Files.readAllLines(new File(out, "summary.csv").toPath(), StandardCharsets.UTF_8);
		assertEquals(lines.toString(), 3, lines.size());
		assertTrue(lines.get(1), lines.get(1).startsWith("\"broken\",error,"));
		assertTrue(lines.get(2), lines.get(2).startsWith("\"good\",pass,mi,"));
		double angle = Double.parseDouble(lines.get(2).split(",")[3]);
		assertEquals("TRUTH rotates by 8°", 8, angle, 0.5);

		ImagePlus warped = new Opener().openImage(new File(out, "good/warped.tif").getPath());
		assertEquals(p[0].getWidth(), warped.getWidth());
		assertEquals("the fixed calibration", 0.5, warped.getCalibration().pixelWidth, 1e-9);
		double[] m = new double[6];
		TransformPlan t = TestSupport.plan(new File(out, "good/transform.json").getPath());
		System.arraycopy(t.matrix, 0, m, 0, 6);
		assertTrue("corner error", RegisterTest.cornerError(m, RegisterTest.TRUTH, 200, 180) < 2);
		assertTrue(new File(out, "good/bigwarp-landmarks.csv").isFile());
	}

	@Test
	public void badFoldersAndEndingsGiveMessages() throws Exception {
		File in = tmp.newFolder("in");
		TestSupport.write(new File(in, "a_he.tif"), "x");
		String[][] cases = {
			{new File(tmp.getRoot(), "nope").getPath(), "_he.tif", "_if.tif", "does not exist"},
			{in.getPath(), "_he.tif", "_if.tif", "no moving image"},
			{in.getPath(), "_x.tif", "_y.tif", "no image pairs"},
			{in.getPath(), "_he.tif", "_he.tif", "differ"},
		};
		for (String[] c : cases) {
			try {
				BatchRegister.register(c[0], c[1], c[2], "", "mi", "rigid", false, tmp.newFolder().getPath());
				fail("accepted " + String.join(" ", c));
			}
			catch (ComirException e) {
				assertTrue(c[3] + " expected in: " + e.getMessage(), e.getMessage().contains(c[3]));
			}
		}
	}
}
