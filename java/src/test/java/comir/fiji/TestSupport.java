package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import ij.ImagePlus;
import ij.WindowManager;
import ij.macro.Interpreter;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/** Helpers shared by the tests: the CLI, transform files, running commands as a macro does. */
final class TestSupport {
	private TestSupport() {}

	static File cli() {
		File f = new File(System.getProperty("comir.cli", "target/release/comir"));
		assertTrue("the comir CLI should have been built at " + f, f.canExecute());
		return f;
	}

	/** A CoMIR transform file with the given fixed → moving matrix (pixels). */
	static File writeTransform(File dir, String name, double[] m, String fixedGrid) throws IOException {
		String json = "{\"format\":\"comir-transform\",\"version\":1,\"kind\":\"affine\","
			+ "\"direction\":\"fixed_to_moving\",\"matrix\":[[" + m[0] + "," + m[1] + "," + m[2] + "],["
			+ m[3] + "," + m[4] + "," + m[5] + "]]" + (fixedGrid == null ? "" : ",\"fixed\":" + fixedGrid) + "}";
		return write(new File(dir, name), json);
	}

	static File write(File file, String text) throws IOException {
		FileOutputStream out = new FileOutputStream(file);
		try {
			out.write(text.getBytes(StandardCharsets.UTF_8));
		}
		finally {
			out.close();
		}
		return file;
	}

	/** Runs the CLI and fails the test with its output if it does not succeed. */
	static void runCli(String... args) throws Exception {
		String[] cmd = new String[args.length + 1];
		cmd[0] = cli().getPath();
		System.arraycopy(args, 0, cmd, 1, args.length);
		Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
		InputStream in = p.getInputStream();
		ByteArrayOutputStream buf = new ByteArrayOutputStream();
		byte[] chunk = new byte[4096];
		for (int n; (n = in.read(chunk)) > 0;) buf.write(chunk, 0, n);
		int rc = p.waitFor();
		assertEquals("comir CLI failed: " + buf.toString("UTF-8"), 0, rc);
	}

	/**
	 * Runs a menu command with macro options, as a macro does. ImageJ hands the options only to
	 * threads named "Run$_…" and renames a thread just once; the test runner may rename its
	 * worker back between classes, so make sure here, or a modal dialog would wait forever.
	 */
	static void macro(ImagePlus imp, String command, String options) {
		Thread t = Thread.currentThread();
		if (!t.getName().startsWith("Run$_")) t.setName("Run$_" + t.getName());
		if (imp == null) ij.IJ.run(command, options);
		else ij.IJ.run(imp, command, options);
	}

	/**
	 * Runs a menu command on {@code imp} as a macro would (IJ.run with an options string) in
	 * batch mode, and returns the image it produced.
	 */
	static ImagePlus runCommand(ImagePlus imp, String command, String options) {
		boolean batch = Interpreter.batchMode;
		Interpreter.batchMode = true;
		ij.IJ.redirectErrorMessages(true); // an error goes to the Log (shown below), not to a modal dialog
		try {
			macro(imp, command, options);
			ImagePlus result = WindowManager.getCurrentImage();
			assertTrue("the command should have produced a new image; log: " + ij.IJ.getLog(), result != null && result != imp);
			return result;
		}
		finally {
			ij.IJ.redirectErrorMessages(false);
			Interpreter.batchMode = batch;
		}
	}

	/**
	 * What ImageJ logs while open: IJ.log goes to the Log window when there is one, else to
	 * standard output (headless tests), so both are collected.
	 */
	static final class LogCapture implements AutoCloseable {
		private final java.io.PrintStream stdout = System.out;
		private final ByteArrayOutputStream printed = new ByteArrayOutputStream();

		LogCapture() throws IOException {
			System.setOut(new java.io.PrintStream(printed, true, "UTF-8"));
			ij.IJ.log("\\Clear");
		}

		String text() throws IOException {
			return (ij.IJ.getLog() == null ? "" : ij.IJ.getLog()) + printed.toString("UTF-8");
		}

		@Override
		public void close() {
			System.setOut(stdout);
		}
	}

	/** A transform file read as Apply Transform reads it, for an 8 × 8 input and no fixed image. */
	static TransformPlan plan(String path) {
		return TransformPlan.read(path, new ij.ImagePlus("input", new ij.process.FloatProcessor(8, 8)), null, 0, 0);
	}
}
