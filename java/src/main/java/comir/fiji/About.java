package comir.fiji;

import ij.IJ;
import ij.plugin.PlugIn;

/** Plugins › Registration › CoMIR › About CoMIR: versions, devices, and a native self-check. */
public class About implements PlugIn {
	@Override
	public void run(String arg) {
		try {
			Native.ensureLoaded();
			String info = Native.runtimeInfo();
			IJ.log(info);
			if (IJ.getInstance() == null) return; // headless or batch mode: the log is enough
			IJ.showMessage("About CoMIR", "CoMIR multimodal registration for Fiji\n \n" + info);
		}
		catch (ComirException e) {
			e.show("About CoMIR");
		}
	}
}
