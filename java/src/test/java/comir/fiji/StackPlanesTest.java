package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import ij.ImagePlus;
import ij.ImageStack;
import ij.WindowManager;
import ij.macro.Interpreter;
import ij.measure.ResultsTable;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.Timeout;

/** Stack planes (macro key stack_planes): max-projection and every-plane, driven as macros. */
public class StackPlanesTest {
	@Rule
	public Timeout timeout = Timeout.seconds(300);

	static final int W = 200, H = 180;

	/** The fixed view of a bigger scene. */
	static ImagePlus fixedView(ImagePlus big, String title) {
		ImagePlus f = ApplyTransform.warp(big, new double[] {1, 0, 100, 0, 1, 100}, W, H);
		f.setTitle(title);
		return f;
	}


	/** A moving view whose fixed → moving transform is the shift (dx, dy). */
	static ij.process.ImageProcessor shifted(ImagePlus big, double dx, double dy) {
		return ApplyTransform.warp(big, new double[] {1, 0, 100 - dx, 0, 1, 100 - dy}, W, H).getProcessor();
	}

	/** Runs the command in batch mode; returns the image it opened with this title, or null. */
	private static ImagePlus runMacro(ImagePlus fixed, ImagePlus moving, String extra, String resultTitle) {
		boolean batch = Interpreter.batchMode;
		Interpreter.batchMode = true;
		try {
			fixed.show();
			moving.show();
			TestSupport.macro(null, "Register Multimodal Images...", "fixed=[" + fixed.getTitle() + "] moving=[" + moving.getTitle()
				+ "] model=[] method=mi transform=translation small_rotation_only " + extra);
			return WindowManager.getImage(resultTitle);
		}
		finally {
			Interpreter.batchMode = batch;
		}
	}

	@Test
	public void everyPlaneRegistersEachPlaneOnItsOwnAndBuildsTheRegisteredStack() {
		Native.ensureLoaded();
		ImagePlus big = RegisterTest.scene("big", 400, 380, 13);
		ImagePlus fixed = fixedView(big, "stack-fixed");
		double[][] shifts = {{6, -4}, {-9, 3}, {2, 11}};
		ImageStack s = new ImageStack(W, H);
		for (double[] d : shifts) s.addSlice(shifted(big, d[0], d[1]));
		ImagePlus moving = new ImagePlus("stack-moving-drift", s);
		moving.setDimensions(1, 1, shifts.length); // a time series drifting
		ResultsTable before = ResultsTable.getResultsTable(RegisterMultimodal.TABLE);
		int rows = before == null ? 0 : before.size();
		ImagePlus result = runMacro(fixed, moving, "stack_planes=every-plane", "Registered stack-moving-drift (every plane) on stack-fixed");
		ResultsTable rt = ResultsTable.getResultsTable(RegisterMultimodal.TABLE);
		assertEquals("one Results row per plane", rows + shifts.length, rt.size());
		for (int i = 0; i < shifts.length; i++) {
			int row = rows + i;
			assertEquals("plane " + (i + 1) + " Tx", shifts[i][0], rt.getValue("Tx (px)", row), 0.5);
			assertEquals("plane " + (i + 1) + " Ty", shifts[i][1], rt.getValue("Ty (px)", row), 0.5);
			assertTrue(rt.getStringValue("Moving", row).contains("t=" + (i + 1)));
		}
		assertTrue("the registered stack should be open", result != null);
		assertEquals(shifts.length, result.getNFrames());
		// Each registered plane now lies on the fixed image: compare the centre pixel region.
		float[] f = (float[]) fixed.getProcessor().convertToFloat().getPixels();
		for (int t = 1; t <= shifts.length; t++) {
			float[] r = (float[]) result.getStack().getProcessor(t).convertToFloat().getPixels();
			double diff = 0, norm = 0;
			for (int y = 40; y < H - 40; y++)
				for (int x = 40; x < W - 40; x++) {
					diff += Math.abs(r[y * W + x] - f[y * W + x]);
					norm += Math.abs(f[y * W + x]);
				}
			assertTrue("plane " + t + " registered: relative difference " + diff / norm, diff / norm < 0.05);
		}
	}

	@Test
	public void maxProjectionRegistersWhatTheZSlicesShowTogether() throws Exception {
		Native.ensureLoaded();
		ImagePlus big = RegisterTest.scene("big", 400, 380, 17);
		ImagePlus fixed = fixedView(big, "proj-fixed");
		// The structures lie in z-slice 2 only; slices 1 and 3 are empty (out of focus).
		ImageStack s = new ImageStack(W, H);
		s.addSlice(new ij.process.FloatProcessor(W, H));
		s.addSlice(shifted(big, 7, -5));
		s.addSlice(new ij.process.FloatProcessor(W, H));
		ImagePlus moving = new ImagePlus("proj-moving", s);
		moving.setDimensions(1, 3, 1);
		moving.setSlice(1); // the current plane is an empty one
		RegisterMultimodal.last = null;
		String log;
		try (TestSupport.LogCapture capture = new TestSupport.LogCapture()) {
			runMacro(fixed, moving, "stack_planes=max-projection", "");
			log = capture.text();
		}
		Registration r = RegisterMultimodal.last;
		assertTrue("registered; log: " + log, r != null);
		assertEquals(7, r.tx, 0.5);
		assertEquals(-5, r.ty, 0.5);
		assertTrue(r.reason, r.passed);
		assertTrue(log, log.contains("maximum projection of proj-moving"));
	}
}
