package comir.fiji;

import ij.IJ;
import ij.Macro;

/**
 * Every failure reported by the CoMIR native library, with a message meant for the user and
 * the library's name of its kind ({@code comir::Error::kind}: "cancelled", "region",
 * "unknown_choice", "file", "internal", ...), so that a command tells a cancel from a refused
 * input without reading the message.
 */
public class ComirException extends RuntimeException {
	private static final long serialVersionUID = 1L;
	private final String kind;

	public ComirException(String message) {
		this("error", message);
	}

	public ComirException(String kind, String message) {
		super(message);
		this.kind = kind;
	}

	public ComirException(String message, Throwable cause) {
		super(message, cause);
		this.kind = "error";
	}

	/** The kind's name as the library gives it. */
	public String kind() {
		return kind;
	}

	/** True when the user cancelled the run (Esc): not an error to show in a dialog. */
	public boolean cancelled() {
		return "cancelled".equals(kind);
	}

	/**
	 * Tell the user: a cancel is a status line (and stops a running macro, so that it does not
	 * go on with a result that was never made); anything else an error dialog.
	 */
	public void show(String command) {
		if (cancelled()) {
			IJ.showStatus(command + ": cancelled");
			if (IJ.isMacro()) Macro.abort();
		}
		else {
			IJ.error(command, getMessage());
		}
	}
}
