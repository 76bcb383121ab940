package comir.fiji;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.junit.rules.Timeout;

/** The native library loads from the install folder and turns bad input into exceptions. */
public class NativeTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	/** A command that unexpectedly opens a modal dialog fails the test instead of hanging it. */
	@Rule
	public Timeout timeout = Timeout.seconds(180);

	@Test
	public void loadsAndRunsLibtorch() {
		Native.ensureLoaded();
		String info = Native.runtimeInfo();
		assertTrue(info, info.contains("libtorch 2.13.0"));
		assertTrue("a 3x3 conv of ones over a 4x4 input of ones sums to 36: " + info, info.contains("conv2d check: 36"));
	}

	@Test
	public void readsATransformFile() throws Exception {
		File f = TestSupport.writeTransform(tmp.getRoot(), "t.json", new double[] {1, 0, 2.5, 0, 1, -3},
			"{\"width\":40,\"height\":30,\"calibration\":{\"pixel_width\":0.5,\"pixel_height\":0.25,\"unit\":\"µm\"}}");
		TransformPlan t = TestSupport.plan(f.getPath());
		assertArrayEquals(new double[] {1, 0, 2.5, 0, 1, -3}, t.matrix, 0);
		assertEquals(40, t.width); // the fixed grid recorded in the file
		assertEquals(30, t.height);
		assertEquals(0.5, t.pixelWidth, 0);
		assertEquals(0.25, t.pixelHeight, 0);
		assertEquals("µm", t.unit);
	}

	@Test
	public void transformWithoutGridHasNoSize() throws Exception {
		File f = TestSupport.writeTransform(tmp.getRoot(), "t.json", new double[] {1, 0, 0, 0, 1, 0}, null);
		TransformPlan t = TestSupport.plan(f.getPath());
		assertEquals("no grid in the file: the input's size", 8, t.width);
		assertEquals(8, t.height);
		assertNull(t.unit);
	}

	@Test
	public void badTransformFilesThrowWithAMessage() throws Exception {
		expectMessage("no such file", new File(tmp.getRoot(), "missing.json").getPath());
		expectMessage("not valid JSON", TestSupport.write(tmp.newFile("a.json"), "{\"format\": ").getPath());
		expectMessage("singular", TestSupport.writeTransform(tmp.getRoot(), "s.json", new double[] {1, 2, 0, 2, 4, 0}, null).getPath());
		expectMessage("newer CoMIR", TestSupport.write(tmp.newFile("v.json"),
			"{\"format\":\"comir-transform\",\"version\":99}").getPath());
	}

	private static void expectMessage(String fragment, String path) {
		try {
			TestSupport.plan(path);
			fail("expected an error for " + path);
		}
		catch (ComirException e) {
			assertTrue(e.getMessage(), e.getMessage().toLowerCase().contains(fragment.toLowerCase()));
		}
	}

	@Test
	public void badWarpArgumentsThrowInsteadOfCrashing() {
		double[] identity = {1, 0, 0, 0, 1, 0};
		String[] fragments = {"values but", "matrix", "pixels must be", "-4", "null"};
		Object[][] calls = {
			{new byte[10], 4, 4, identity},
			{new byte[16], 4, 4, new double[] {1, 0}},
			{new long[16], 4, 4, identity},
			{new byte[16], -4, 4, identity},
			{null, 4, 4, identity},
		};
		for (int i = 0; i < calls.length; i++) {
			try {
				Object[] c = calls[i];
				Native.warpPlane(c[0], ApplyTransform.warpRequest((Integer) c[1], (Integer) c[2], (double[]) c[3], 4, 4));
				fail("expected an error for call " + i);
			}
			catch (ComirException e) {
				assertTrue(e.getMessage(), e.getMessage().contains(fragments[i]));
			}
		}
	}

	/** On macOS or Windows the message says which platforms are supported, not "copy lib/linux64". */
	@Test
	public void unsupportedPlatformsGetAPlainMessage() {
		assertNull(Native.unsupportedPlatform("Linux", "amd64"));
		for (String[] p : new String[][] {{"Mac OS X", "aarch64"}, {"Windows 11", "amd64"}, {"Linux", "aarch64"}}) {
			String m = Native.unsupportedPlatform(p[0], p[1]);
			assertTrue(p[0] + " " + p[1], m != null && m.contains("Linux on x86-64") && !m.contains("lib/linux64"));
		}
	}
}
