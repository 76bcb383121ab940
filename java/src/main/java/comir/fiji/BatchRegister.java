package comir.fiji;

import ij.IJ;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.measure.ResultsTable;
import ij.plugin.PlugIn;
import java.awt.GraphicsEnvironment;
import java.io.File;

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
			Object[] r = register(input, fixed, moving, how, output);
			int[] counts = (int[]) r[1];
			IJ.log("CoMIR batch: " + counts[0] + " pass, " + counts[1] + " FAIL, " + counts[2] + " error; summary in " + r[0]);
			if (!GraphicsEnvironment.isHeadless()) showSummary((String) r[0]);
		}
		catch (ComirException e) {
			IJ.error("Batch Register", e.getMessage());
		}
	}

	/** Runs the batch (progress bar, Esc stops after the current pair); see {@link Native#batchRegister}. */
	public static Object[] register(String input, String fixedEnding, String movingEnding, String model,
		String method, String kind, boolean anyRotation, String output)
	{
		return register(input, fixedEnding, movingEnding, new RegisterParams(model, method, kind, anyRotation), output);
	}

	public static Object[] register(final String input, final String fixedEnding, final String movingEnding,
		RegisterParams how, final String output)
	{
		if (input.isEmpty() || output.isEmpty()) throw new ComirException("Please choose the input and the output folder.");
		if (!new File(input).isDirectory()) throw new ComirException("The input folder does not exist: " + input);
		final String modelPath = how.modelPath(), params = how.toJson();
		return NativeJob.run("Batch registration of " + input, new NativeJob.Call<Object[]>() {
			@Override
			public Object[] run(long job) {
				return Native.batchRegister(input, fixedEnding, movingEnding, modelPath, params, output, job);
			}
		});
	}

	private static void showSummary(String csv) {
		ResultsTable rt = ResultsTable.open2(csv);
		if (rt != null) rt.show(TABLE);
	}
}
