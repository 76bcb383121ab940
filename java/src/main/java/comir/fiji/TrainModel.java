package comir.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.plugin.PlugIn;
import java.io.File;

/**
 * Plugins › Registration › CoMIR › Train CoMIR Model...: trains a model on one aligned pair of
 * open images (an area ROI on the first restricts training to its shape). The time it will take is
 * measured and shown before it starts. Progress in the
 * status bar, Esc stops early; the model file is written atomically in any case.
 * Macro: {@code run("Train CoMIR Model...", "modality_a=a.tif modality_b=b.tif name_a=BF name_b=SHG
 * size=small steps=1000 start=random model=/path/out.safetensors");}
 */
public class TrainModel implements PlugIn {
	@Override
	public void run(String arg) {
		int[] ids = WindowManager.getIDList();
		if (ids == null || ids.length < 2) {
			IJ.error("Train CoMIR Model", "Please open the two aligned images of the training pair first.");
			return;
		}
		if (!Native.isLoaded()) { // the dialog's choices and defaults come from the library
			IJ.error("Train CoMIR Model", RegisterMultimodal.loadError());
			return;
		}
		String[] titles = RegisterMultimodal.titles(ids);
		GenericDialog gd = new MacroDialog("Train CoMIR Model");
		gd.addChoice("Modality_A image", titles, titles[0]);
		gd.addChoice("Modality_B image", titles, titles[1]);
		TrainParams.addFields(gd); // the same defaults as `comir train`, from the library
		gd.addFileField("Model file to write", "", 40);
		gd.addMessage("Training takes minutes to hours on a CPU: the status bar shows the time left,\nEsc stops early and still writes the model of the steps done.");
		gd.showDialog();
		if (gd.wasCanceled()) return;
		ImagePlus a = WindowManager.getImage(ids[gd.getNextChoiceIndex()]);
		ImagePlus b = WindowManager.getImage(ids[gd.getNextChoiceIndex()]);
		TrainParams how = TrainParams.read(gd);
		String out = gd.getNextString().trim();
		try {
			if (!confirmDuration(a, b, how)) return;
			for (String line : train(a, b, how, out).split("\n")) IJ.log("CoMIR: " + line);
		}
		catch (ComirException e) {
			e.show("Train CoMIR Model");
		}
	}

	/**
	 * Says how long the training will take on this machine (measured on a few steps) before it
	 * starts: in the Log for a macro, in a dialog that can still cancel otherwise.
	 * @return false when the user cancelled
	 */
	static boolean confirmDuration(ImagePlus a, ImagePlus b, TrainParams how) {
		IJ.showStatus("Train CoMIR Model: measuring the time per step...");
		String message = Native.trainingEstimate("{\"params\":" + how.toJson() + ",\"channels\":[" + NativeImage.channels(a) + ","
			+ NativeImage.channels(b) + "]}") + ".";
		IJ.showStatus("");
		IJ.log("CoMIR: " + message);
		if (IJ.isMacro() || IJ.getInstance() == null || java.awt.GraphicsEnvironment.isHeadless()) return true;
		return IJ.showMessageWithCancel("Train CoMIR Model", message + "\nStart training? (Esc stops early and still writes the model.)");
	}

	public static String train(ImagePlus a, ImagePlus b, TrainParams how, String out) {
		if (out.isEmpty()) throw new ComirException("Please choose where to write the model (.safetensors).");
		if (a == b) throw new ComirException("The two images of a training pair must be different images.");
		final NativeImage pa = NativeImage.of(a, true), pb = NativeImage.of(b, false);
		final String request = "{\"a\":" + pa.json + ",\"b\":" + pb.json + ",\"params\":" + how.toJson() + ",\"out\":" + Json.quote(new File(out).getAbsolutePath()) + "}";
		return NativeJob.run("Training CoMIR model", new NativeJob.Call<String>() {
			@Override
			public String run(long job) {
				return Native.train(pa.planes, pb.planes, pa.mask, request, job);
			}
		});
	}
}
