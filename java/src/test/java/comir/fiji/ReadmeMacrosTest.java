package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import ij.IJ;
import ij.ImagePlus;
import ij.WindowManager;
import ij.macro.Interpreter;
import ij.measure.ResultsTable;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.junit.rules.Timeout;

/**
 * Every macro of the README's command table runs, as written, through ImageJ's macro
 * interpreter: only the example paths are replaced by real files (and Train's step count by 3,
 * to keep the test short). A misspelt or outdated key now stops a command with a message
 * (see {@link MacroDialog}); this test fails when the README documents one. Each command's
 * effect is checked, so a macro that "ran" but did nothing fails too.
 */
public class ReadmeMacrosTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	@Rule
	public Timeout timeout = Timeout.seconds(300);

	/** The README's macros, command name → macro code, in table order. */
	static Map<String, String> readmeMacros() throws Exception {
		String readme = new String(Files.readAllBytes(new File("README.md").toPath()), StandardCharsets.UTF_8);
		Map<String, String> macros = new LinkedHashMap<String, String>();
		Matcher m = Pattern.compile("^\\| [^|]+ \\| `(run\\(\"([^\"]+)\"[^`]*\\);)` \\|$", Pattern.MULTILINE).matcher(readme);
		while (m.find()) macros.put(m.group(2), m.group(1));
		return macros;
	}

	@Test
	public void theTableDocumentsEveryMenuCommand() throws Exception {
		String config = new String(Files.readAllBytes(new File("java/src/main/resources/plugins.config").toPath()), StandardCharsets.UTF_8);
		List<String> commands = new ArrayList<String>();
		Matcher m = Pattern.compile("^Plugins>[^,]+, \"([^\"]+)\"", Pattern.MULTILINE).matcher(config);
		while (m.find()) commands.add(m.group(1));
		assertEquals(8, commands.size());
		assertEquals(commands, new ArrayList<String>(readmeMacros().keySet()));
	}

	@Test
	public void unknownKeysAreRefusedNotIgnored() {
		assertEquals(Arrays.asList("any_rotation", "bogus"), MacroDialog.unknownKeys(
			"fixed=a.tif moving=[b c.tif] any_rotation model=[] bogus=[x y] use_rois",
			new java.util.HashSet<String>(Arrays.asList("fixed", "moving", "model", "use_rois"))));
	}

	@Test
	public void everyReadmeMacroRunsAsWritten() throws Exception {
		Native.ensureLoaded();
		Map<String, String> macros = readmeMacros();
		File dir = tmp.getRoot();
		File model = new File(dir, "model.safetensors"), out = new File(dir, "out"), data = new File(dir, "data"), results = new File(dir, "results");
		assertTrue(data.mkdir());
		// The example paths of the README → real files of this test (longest first).
		String[][] paths = {
			{"/path/model.safetensors", model.getPath()}, {"/path/out.safetensors", model.getPath()},
			{"/path/transform.json", new File(out, "transform.json").getPath()},
			{"/path/landmarks.csv", new File(out, "bigwarp-landmarks.csv").getPath()},
			{"/out/dir", out.getPath()}, {"/results", results.getPath()}, {"/data", data.getPath()},
		};
		ImagePlus[] pair = RegisterTest.pair();
		IJ.saveAsTiff(pair[0], new File(data, "p1_he.tif").getPath());
		IJ.saveAsTiff(pair[1], new File(data, "p1_shg.tif").getPath());

		boolean batch = Interpreter.batchMode;
		Interpreter.batchMode = true;
		try {
			// Train first: the other commands use the model it writes (modalities BF and SHG).
			ImagePlus bf = RegisterTest.scene("bf.tif", 96, 96, 3), shg = RegisterTest.scene("shg.tif", 96, 96, 4);
			bf.show();
			shg.show();
			run(macros.get("Train CoMIR Model...").replace("steps=1000", "steps=3"), paths);
			assertTrue("Train wrote the model", model.length() > 1000);
			bf.close();
			shg.close();

			ImagePlus a = pair[0].duplicate(), b = pair[1].duplicate();
			a.setTitle("a.tif");
			b.setTitle("b.tif");
			a.show();
			b.show();
			RegisterMultimodal.last = null;
			run(macros.get("Register Multimodal Images..."), paths);
			assertTrue("Register made a registration", RegisterMultimodal.last != null);
			assertTrue("Register exported transform.json", new File(out, "transform.json").isFile());

			WindowManager.setTempCurrentImage(b);
			run(macros.get("Compute CoMIR..."), paths);
			assertTrue("Compute showed a CoMIR", WindowManager.getImage("CoMIR of b.tif") != null);

			WindowManager.setTempCurrentImage(b);
			run(macros.get("Apply Transform..."), paths);
			assertTrue("Apply showed the warped image", WindowManager.getImage("b-transformed") != null);

			File export = new File(out, "bigwarp-landmarks.json");
			assertTrue(export.delete());
			run(macros.get("Export to BigWarp..."), paths);
			assertTrue("Export wrote the BigWarp JSON again", export.isFile());

			RegisterMultimodal.last = null;
			run(macros.get("Import BigWarp Landmarks..."), paths);
			assertTrue("Import made a registration from the landmarks", RegisterMultimodal.last != null && "landmarks".equals(RegisterMultimodal.last.method));

			run(macros.get("Batch Register..."), paths);
			assertTrue("Batch wrote its summary", new File(results, "summary.csv").isFile());
			assertTrue("Batch registered the pair", new File(results, "p1/transform.json").isFile());

			String about;
			try (TestSupport.LogCapture capture = new TestSupport.LogCapture()) {
				run(macros.get("About CoMIR..."), paths);
				about = capture.text();
			}
			assertTrue("About logged the versions: " + about, about.contains("libtorch 2.13.0"));
		}
		finally {
			Interpreter.batchMode = batch;
		}
	}

	/**
	 * Runs one README macro, {@code run("Command...", "options");}, with its example paths
	 * replaced, the way the macro interpreter runs it (IJ.run with the options on a "Run$_"
	 * thread, errors to the Log); fails on any refusal or error.
	 */
	private static void run(String macro, String[][] paths) {
		assertTrue("the README documents this command", macro != null);
		Matcher m = Pattern.compile("^run\\(\"([^\"]+)\"(?:, \"([^\"]*)\")?\\);$").matcher(macro);
		assertTrue("a README macro is one run(...) call: " + macro, m.matches());
		String options = m.group(2);
		if (options != null) for (String[] p : paths) options = options.replace("=" + p[0], "=[" + p[1] + "]");
		IJ.log("\\Clear");
		IJ.redirectErrorMessages(true);
		try {
			TestSupport.macro(null, m.group(1), options);
		}
		catch (RuntimeException e) {
			fail("README macro " + macro + " was aborted: " + e + "\nlog: " + IJ.getLog());
		}
		finally {
			IJ.redirectErrorMessages(false);
		}
		String log = IJ.getLog() == null ? "" : IJ.getLog();
		assertFalse("README macro " + macro + " was refused:\n" + log, log.contains("Unknown macro option"));
	}
}
