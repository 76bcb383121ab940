package comir.fiji;

import ij.IJ;
import ij.ImageJ;
import ij.ImagePlus;
import ij.gui.GenericDialog;
import java.awt.Button;
import java.awt.Rectangle;
import java.awt.Robot;
import java.awt.Window;
import java.awt.event.ActionEvent;
import java.awt.image.BufferedImage;
import java.io.File;
import javax.imageio.ImageIO;

/**
 * Screenshots of every command's dialog for the README (dialog-*.png; `make docs-images` copies them to docs/images): opens the
 * demo pair in a real ImageJ (under Xvfb), opens each dialog as a user would (no macro
 * options), captures it from the screen, and presses Cancel, so nothing runs.
 * <p>
 * Run by scripts/gui-check.sh: {@code gradle dialogScreenshots -Pshots=build/screenshots -Pimages=a.tif,b.tif}.
 */
public final class DialogScreenshots {
	private static final String[][] DIALOGS = {
		{"Register Multimodal Images...", "Register Multimodal Images", "register"},
		{"Train CoMIR Model...", "Train CoMIR Model", "train"},
		{"Compute CoMIR...", "Compute CoMIR", "compute"},
		{"Apply Transform...", "Apply CoMIR Transform", "apply"},
		{"Export to BigWarp...", "Export to BigWarp", "export"},
		{"Import BigWarp Landmarks...", "Import BigWarp Landmarks", "import"},
		{"Batch Register...", "Batch Register", "batch"},
	};

	public static void main(String[] args) throws Exception {
		File out = new File(args[0]);
		out.mkdirs();
		new ImageJ(ImageJ.NO_SHOW); // menus from plugins.dir, as in Fiji
		for (int i = 1; i < args.length; i++) {
			ImagePlus imp = IJ.openImage(args[i]);
			imp.show();
			imp.getWindow().setLocation(20 + 300 * (i - 1), 20);
		}
		// Export needs a registration to export: make one (mutual information, quick).
		ImagePlus[] p = RegisterTest.pair();
		RegisterMultimodal.last = RegisterMultimodal.register(p[0], p[1], null, "mi", "rigid", false, false);
		IJ.selectWindow(IJ.getImage().getID());
		int done = 0;
		for (String[] d : DIALOGS) {
			final String command = d[0];
			Thread t = new Thread(new Runnable() {
				@Override
				public void run() {
					try {
						IJ.run(command);
					}
					catch (RuntimeException cancelled) {
						// IJ.run reports a cancelled dialog as an aborted macro: expected here.
					}
				}
			}, "screenshot " + command); // not "Run$_…": no macro options, the dialog shows
			t.start();
			GenericDialog dialog = waitForDialog(d[1]);
			if (dialog == null) {
				System.err.println("no dialog \"" + d[1] + "\" appeared for " + command);
				continue;
			}
			Thread.sleep(800); // let it paint
			Rectangle r = dialog.getBounds();
			BufferedImage shot = new Robot().createScreenCapture(r);
			File file = new File(out, "dialog-" + d[2] + ".png");
			ImageIO.write(shot, "png", file);
			cancel(dialog);
			t.join(10000);
			done++;
			System.out.println("wrote " + file);
		}
		System.out.println(done + " of " + DIALOGS.length + " dialogs captured");
		System.exit(done == DIALOGS.length ? 0 : 1);
	}

	private static GenericDialog waitForDialog(String title) throws InterruptedException {
		for (int i = 0; i < 100; i++) {
			for (Window w : Window.getWindows())
				if (w instanceof GenericDialog && w.isShowing() && title.equals(((GenericDialog) w).getTitle())) return (GenericDialog) w;
			Thread.sleep(100);
		}
		return null;
	}

	/** Presses the dialog's Cancel button, so the command stops as if the user had cancelled. */
	private static void cancel(GenericDialog dialog) {
		Button[] buttons = dialog.getButtons();
		Button cancel = buttons[1];
		dialog.actionPerformed(new ActionEvent(cancel, ActionEvent.ACTION_PERFORMED, "Cancel"));
	}
}
