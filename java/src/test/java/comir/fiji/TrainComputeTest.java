package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import ij.IJ;
import ij.ImagePlus;
import ij.WindowManager;
import ij.macro.Interpreter;
import ij.process.FloatProcessor;
import java.io.File;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.junit.rules.Timeout;

/** Train CoMIR Model and Compute CoMIR, driven as macros. */
public class TrainComputeTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	/** A command that unexpectedly opens a modal dialog fails the test instead of hanging it. */
	@Rule
	public Timeout timeout = Timeout.seconds(180);

	@Test
	public void trainsAModelThatComputeComirUses() throws Exception {
		ImagePlus a = RegisterTest.scene("mod_a", 96, 96, 3);
		FloatProcessor bp = (FloatProcessor) a.getProcessor().duplicate();
		float[] px = (float[]) bp.getPixels();
		float max = 0;
		for (float v : px) max = Math.max(max, Math.abs(v));
		for (int i = 0; i < px.length; i++) { float s = px[i] / max; px[i] = 1 - (2 * s - 1) * (2 * s - 1); } // another "modality"
		ImagePlus b = new ImagePlus("mod_b", bp);
		File model = new File(tmp.getRoot(), "m.safetensors");
		boolean batch = Interpreter.batchMode;
		Interpreter.batchMode = true;
		ImagePlus comir;
		String log;
		try (TestSupport.LogCapture capture = new TestSupport.LogCapture()) {
			a.show();
			b.show();
			TestSupport.macro(null, "Train CoMIR Model...", "modality_a=mod_a modality_b=mod_b name_a=A name_b=B size=small steps=3 model=[" + model.getPath() + "]");
			log = capture.text();
			// The time it will take is said before training starts (measured here).
			assertTrue(log, log.matches("(?s).*CoMIR: 3 steps of the small network will take about \\d+ s at most on this machine.*CoMIR: wrote .*"));
			assertTrue("model written; log: " + IJ.getLog(), model.isFile() && model.length() > 1000);
			TestSupport.macro(b, "Compute CoMIR...", "model=[" + model.getPath() + "] modality=B");
			comir = WindowManager.getImage("CoMIR of mod_b");
		}
		finally {
			Interpreter.batchMode = batch;
		}
		assertTrue("the CoMIR window should be open", comir != null);
		assertEquals(96, comir.getWidth());
		assertEquals(1, comir.getStackSize());
		float[] values = (float[]) comir.getProcessor().getPixels();
		float lo = Float.MAX_VALUE, hi = -Float.MAX_VALUE;
		for (float v : values) { lo = Math.min(lo, v); hi = Math.max(hi, v); assertTrue(!Float.isNaN(v)); }
		assertTrue("a real computation varies over the image", hi > lo);
		try {
			ComputeComir.compute(b, model.getPath(), "C");
			fail("expected an error for an unknown modality");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("\"A\" and \"B\""));
		}
	}

	@Test
	public void trainingRefusesMismatchedImages() {
		ImagePlus a = RegisterTest.scene("a", 64, 64, 1), b = RegisterTest.scene("b", 60, 64, 2);
		try {
			TrainModel.train(a, b, new TrainParams("A", "B", "small", 1, "random"), new File(tmp.getRoot(), "x.safetensors").getPath());
			fail("expected an error");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("equal size"));
		}
	}
}
