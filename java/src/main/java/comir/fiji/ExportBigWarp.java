package comir.fiji;

import ij.IJ;
import ij.gui.GenericDialog;
import ij.io.DirectoryChooser;
import ij.plugin.PlugIn;

/**
 * Plugins › Registration › CoMIR › Export to BigWarp...: writes the last registration as BigWarp
 * landmarks (CSV + JSON with the transform type), an NGFF-style affine and our transform file.
 * Macro: {@code run("Export to BigWarp...", "folder=/path/out");}
 */
public class ExportBigWarp implements PlugIn {
	@Override
	public void run(String arg) {
		Registration r = RegisterMultimodal.last;
		if (r == null) {
			IJ.error("Export to BigWarp", "There is no registration yet: run Register Multimodal Images first.");
			return;
		}
		GenericDialog gd = new MacroDialog("Export to BigWarp");
		gd.addDirectoryField("Folder", "", 40);
		gd.showDialog();
		if (gd.wasCanceled()) return;
		String folder = gd.getNextString().trim();
		if (folder.isEmpty()) {
			IJ.error("Export to BigWarp", "Please choose a folder.");
			return;
		}
		try {
			export(r, folder);
		}
		catch (ComirException e) {
			e.show("Export to BigWarp");
		}
	}

	static String[] export(Registration r, String folder) {
		Native.ensureLoaded();
		StringBuilder m = new StringBuilder();
		for (double v : r.matrix) m.append(m.length() == 0 ? "" : ",").append(v);
		String request = "{\"matrix\":[" + m + "],\"kind\":" + Json.quote(r.kind) + ",\"fixed\":" + TransformPlan.grid(r.fixed)
			+ ",\"moving\":" + TransformPlan.grid(r.moving) + "}";
		String[] written = Native.exportTransform(folder, request);
		for (String w : written) IJ.log("CoMIR: wrote " + w);
		return written;
	}
}
