package comir.fiji;

import ij.IJ;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.measure.ResultsTable;
import ij.plugin.PlugIn;
import java.awt.GraphicsEnvironment;
import java.io.File;
import java.util.Map;

/**
 * Plugins › Registration › CoMIR › Batch Register...: registers every pair of a folder
 * (NAME + fixed ending, NAME + moving ending) with one model, without opening the images.
 * Per pair, NAME/ in the output folder gets the warped moving image, the overlay, the BigWarp
 * files and a report; summary.csv lists every pair (pass / FAIL / error). A pair that fails
 * does not stop the batch; Esc stops after the current pair.
 * <p>
 * Macro (also headless): {@code run("Batch Register...", "input=/data fixed=_he.tif moving=_shg.tif
 * model=/m.safetensors method=auto transform=rigid any_rotation output=/results");}
 */
public class BatchRegister implements PlugIn {
	static final String TABLE = "CoMIR Batch";
	private static final String PREF = "comir.batch.";

	@Override
	public void run(String arg) {
		if (!Native.isLoaded()) { // the dialog's choices come from the library
			IJ.error("Batch Register", RegisterMultimodal.loadError());
			return;
		}
		GenericDialog gd = new MacroDialog("Batch Register");
		gd.addDirectoryField("Input folder", Prefs.get(PREF + "input", ""), 40);
		gd.addStringField("Fixed file ending", Prefs.get(PREF + "fixed", "_fixed.tif"), 20);
		gd.addStringField("Moving file ending", Prefs.get(PREF + "moving", "_moving.tif"), 20);
		RegisterParams.addFields(gd);
		gd.addDirectoryField("Output folder", Prefs.get(PREF + "output", ""), 40);
		gd.showDialog();
		if (gd.wasCanceled()) return;
		String input = gd.getNextString().trim();
		String fixed = gd.getNextString().trim();
		String moving = gd.getNextString().trim();
		RegisterParams how = RegisterParams.read(gd);
		String output = gd.getNextString().trim();
		Prefs.set(PREF + "input", input);
		Prefs.set(PREF + "fixed", fixed);
		Prefs.set(PREF + "moving", moving);
		Prefs.set(PREF + "output", output);
		try {
			Map<String, Object> r = register(input, fixed, moving, how, output);
			IJ.log("CoMIR batch: " + count(r, "pass") + " pass, " + count(r, "fail") + " FAIL, " + count(r, "error")
				+ " error; summary in " + r.get("summary_csv_path"));
			if (!GraphicsEnvironment.isHeadless()) showSummary((String) r.get("summary_csv_path"));
		}
		catch (ComirException e) {
			e.show("Batch Register");
		}
	}

	/** Runs the batch (progress bar, Esc stops after the current pair); see {@link Native#batchRegister}. */
	public static Map<String, Object> register(String input, String fixedEnding, String movingEnding, String model,
		String method, String kind, boolean anyRotation, String output)
	{
		return register(input, fixedEnding, movingEnding, new RegisterParams(model, method, kind, anyRotation), output);
	}

	/** @return the library's batch outcome: summary_csv_path, pass, fail, error, summary_csv */
	public static Map<String, Object> register(final String input, final String fixedEnding, final String movingEnding,
		RegisterParams how, final String output)
	{
		if (input.isEmpty() || output.isEmpty()) throw new ComirException("Please choose the input and the output folder.");
		if (!new File(input).isDirectory()) throw new ComirException("The input folder does not exist: " + input);
		final String modelPath = how.modelPath(), params = how.toJson();
		String r = NativeJob.run("Batch registration of " + input, new NativeJob.Call<String>() {
			@Override
			public String run(long job) {
				return Native.batchRegister(input, fixedEnding, movingEnding, modelPath, params, output, job);
			}
		});
		return Json.object(r);
	}

	static int count(Map<String, Object> outcome, String key) {
		return ((Double) outcome.get(key)).intValue();
	}

	private static void showSummary(String csv) {
		ResultsTable rt = ResultsTable.open2(csv);
		if (rt != null) rt.show(TABLE);
	}
}
