package comir.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.plugin.PlugIn;
import ij.process.FloatProcessor;
import java.io.File;

/**
 * Plugins › Registration › CoMIR › Compute CoMIR...: shows the representation of the active
 * image computed by a model's network (32-bit, one slice per representation channel).
 * Macro: {@code run("Compute CoMIR...", "model=/path/m.safetensors modality=[]");} (empty
 * modality: the network whose channel count fits the image).
 */
public class ComputeComir implements PlugIn {
	@Override
	public void run(String arg) {
		ImagePlus imp = IJ.getImage();
		if (imp == null) return;
		GenericDialog gd = new MacroDialog("Compute CoMIR");
		gd.addFileField("Model", Prefs.get("comir.register.model", ""), 40);
		gd.addStringField("Modality (empty: by channel count)", "", 20);
		gd.showDialog();
		if (gd.wasCanceled()) return;
		try {
			compute(imp, gd.getNextString().trim(), gd.getNextString().trim()).show();
		}
		catch (ComirException e) {
			e.show("Compute CoMIR");
		}
	}

	public static ImagePlus compute(ImagePlus imp, String model, final String modality) {
		if (model.isEmpty()) throw new ComirException("Please choose a model file (.safetensors).");
		final NativeImage image = NativeImage.of(imp, false);
		final int w = imp.getWidth(), h = imp.getHeight();
		final String request = "{\"image\":" + image.json + ",\"model\":" + Json.quote(new File(model).getAbsolutePath())
			+ (modality.isEmpty() ? "" : ",\"modality\":" + Json.quote(modality)) + "}";
		float[][] channels = NativeJob.run("Computing the CoMIR of " + imp.getTitle(), new NativeJob.Call<float[][]>() {
			@Override
			public float[][] run(long job) {
				return Native.represent(image.planes, request, job);
			}
		});
		ImageStack stack = new ImageStack(w, h);
		for (int c = 0; c < channels.length; c++) stack.addSlice("CoMIR channel " + (c + 1), new FloatProcessor(w, h, channels[c]));
		ImagePlus out = new ImagePlus("CoMIR of " + imp.getTitle(), stack);
		out.setCalibration(imp.getCalibration().copy());
		out.resetDisplayRange();
		return out;
	}
}
