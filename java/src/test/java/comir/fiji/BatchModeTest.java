package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import ij.IJ;
import ij.ImagePlus;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.junit.rules.Timeout;

/**
 * Every command from one macro run by ImageJ's {@code -batch} mode in a fresh JVM: no ImageJ
 * window, results saved to files, warnings to the log, exit code 0, no exception.
 */
public class BatchModeTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	@Rule
	public Timeout timeout = Timeout.seconds(300);

	private static String q(File f) {
		return f.getPath().replace("\\", "/");
	}

	@Test
	public void allCommandsRunFromAMacroInBatchMode() throws Exception {
		File in = tmp.newFolder("pairs"), out = tmp.newFolder("out");
		ImagePlus[] p = RegisterTest.pair();
		IJ.saveAsTiff(p[0], new File(in, "s_fixed.tif").getPath());
		IJ.saveAsTiff(p[1], new File(in, "s_moving.tif").getPath());
		File export = new File(out, "export"), batch = new File(out, "batch"), applied = new File(out, "applied.tif");
		String macro = String.join("\n",
			"open('" + q(new File(in, "s_fixed.tif")) + "');",
			"open('" + q(new File(in, "s_moving.tif")) + "');",
			"run('Register Multimodal Images...', 'fixed=s_fixed.tif moving=s_moving.tif model=[] method=mi transform=rigid export=[" + q(export) + "]');",
			"run('Batch Register...', 'input=[" + q(in) + "] fixed=_fixed.tif moving=_moving.tif model=[] method=mi transform=rigid output=[" + q(batch) + "]');",
			"selectImage('s_moving.tif');",
			"run('Apply Transform...', 'transform=[" + q(new File(export, "transform.json")) + "] width=0 height=0');",
			"saveAs('Tiff', '" + q(applied) + "');",
			"run('Import BigWarp Landmarks...', 'landmarks=[" + q(new File(export, "bigwarp-landmarks.json")) + "] fixed=s_fixed.tif moving=s_moving.tif transform=[from file]');",
			"print('macro finished, registrations: ' + Table.size('" + RegisterMultimodal.TABLE + "'));", "");
		File script = TestSupport.write(tmp.newFile("all.ijm"), macro);

		String java = new File(System.getProperty("java.home"), "bin/java").getPath();
		Process proc = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
			"-Dplugins.dir=" + System.getProperty("plugins.dir"), "-Djava.library.path=" + System.getProperty("java.library.path"),
			"ij.ImageJ", "-batch", script.getPath()).redirectErrorStream(true).start();
		InputStream stream = proc.getInputStream();
		ByteArrayOutputStream buf = new ByteArrayOutputStream();
		byte[] chunk = new byte[4096];
		for (int n; (n = stream.read(chunk)) > 0;) buf.write(chunk, 0, n);
		String log = buf.toString("UTF-8");
		assertEquals(log, 0, proc.waitFor());
		assertFalse(log, log.contains("Exception"));
		assertTrue(log, log.contains("macro finished, registrations: 2"));

		TransformPlan t = TestSupport.plan(new File(export, "transform.json").getPath());
		assertTrue("corner error", RegisterTest.cornerError(t.matrix, RegisterTest.TRUTH, 200, 180) < 2);
		List<String> summary = Files.readAllLines(new File(batch, "summary.csv").toPath(), StandardCharsets.UTF_8);
		assertTrue(summary.toString(), summary.size() == 2 && summary.get(1).startsWith("\"s\",pass,"));
		ImagePlus a = IJ.openImage(applied.getPath());
		assertEquals(200, a.getWidth());
		assertEquals(180, a.getHeight());
	}
}
