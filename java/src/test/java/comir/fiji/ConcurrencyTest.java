package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import ij.ImagePlus;
import java.io.File;
import java.io.FileOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.junit.rules.Timeout;

/** Several registrations at once through JNI agree with one at a time; bad models fail cleanly. */
public class ConcurrencyTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	/** A command that unexpectedly opens a modal dialog fails the test instead of hanging it. */
	@Rule
	public Timeout timeout = Timeout.seconds(180);

	private static ImagePlus[] pair(long seed, double shift) {
		ImagePlus big = RegisterTest.scene("big", 300, 280, seed);
		ImagePlus fixed = ApplyTransform.warp(big, new double[] {1, 0, 50, 0, 1, 50}, 160, 140);
		ImagePlus moving = ApplyTransform.warp(big, new double[] {1, 0, 50 - shift, 0, 1, 50 + shift / 2}, 160, 140);
		return new ImagePlus[] {fixed, moving};
	}

	@Test
	public void fourThreadsAgreeWithSequentialRuns() throws Exception {
		Native.ensureLoaded();
		final List<ImagePlus[]> pairs = new ArrayList<ImagePlus[]>();
		for (int i = 0; i < 4; i++) pairs.add(pair(10 + i, 3 + 2 * i));
		double[][] sequential = new double[4][];
		for (int i = 0; i < 4; i++)
			sequential[i] = RegisterMultimodal.register(pairs.get(i)[0], pairs.get(i)[1], "", "mi", "translation", false, false).matrix;
		ExecutorService pool = Executors.newFixedThreadPool(4);
		List<Future<double[]>> futures = new ArrayList<Future<double[]>>();
		for (final ImagePlus[] p : pairs)
			futures.add(pool.submit(new Callable<double[]>() {
				@Override
				public double[] call() {
					return RegisterMultimodal.register(p[0], p[1], "", "mi", "translation", false, false).matrix;
				}
			}));
		for (int i = 0; i < 4; i++) {
			double[] m = futures.get(i).get();
			// the known shift of pair i (a feature at fixed p is at moving p + (s, -s/2)), and the sequential result
			assertEquals("pair " + i, 3 + 2 * i, m[2], 1.0);
			assertEquals("pair " + i, -(3 + 2 * i) / 2.0, m[5], 1.0);
			for (int k = 0; k < 6; k++) assertEquals("pair " + i + " entry " + k, sequential[i][k], m[k], 0.05);
		}
		pool.shutdown();
	}

	@Test
	public void corruptModelFilesGiveMessages() throws Exception {
		ImagePlus[] p = pair(1, 2);
		File garbage = tmp.newFile("garbage.safetensors");
		FileOutputStream out = new FileOutputStream(garbage);
		out.write("this is not a model".getBytes("UTF-8"));
		out.close();
		try {
			RegisterMultimodal.register(p[0], p[1], garbage.getPath(), "auto", "rigid", false, false);
			fail("expected an error");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("not a CoMIR model") && e.getMessage().contains("garbage.safetensors"));
		}
		File model = new File(System.getProperty("comir.models", "models"), "ihc-hdab-small.safetensors");
		if (!model.isFile()) return;
		ImagePlus rgb = ij.IJ.createImage("rgb", "RGB", 64, 64, 1);
		try {
			RegisterMultimodal.register(rgb, p[1], model.getPath(), "auto", "rigid", false, false);
			fail("expected an error");
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().contains("channel"));
		}
	}
}
