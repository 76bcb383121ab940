package comir.fiji;

import ij.Macro;
import ij.gui.GenericDialog;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * A {@link GenericDialog} that refuses macro options it does not know. ImageJ silently ignores
 * a misspelt key (a checkbox then reads as off, a field as its default), which turned
 * {@code any_rotation} into "no rotation search" without a word. Here every field records its
 * macro key as it is added (ImageJ's rule: the label up to the first space, lower case;
 * an underscore in a label shows as a space in the dialog), and {@link #showDialog()} in a
 * macro stops with a message that names the unknown key and lists the valid ones.
 */
class MacroDialog extends GenericDialog {
	private final Set<String> keys = new LinkedHashSet<String>();
	private String refusal;

	MacroDialog(String title) {
		super(title);
	}

	private void key(String label) {
		keys.add(Macro.trimKey(label));
	}

	/** The macro keys of the fields added so far, in dialog order. */
	List<String> keys() {
		return new ArrayList<String>(keys);
	}

	@Override
	public void addChoice(String label, String[] items, String defaultItem) {
		key(label);
		super.addChoice(label, items, defaultItem);
	}

	@Override
	public void addCheckbox(String label, boolean defaultValue) {
		key(label);
		super.addCheckbox(label, defaultValue);
	}

	@Override
	public void addStringField(String label, String defaultText, int columns) {
		key(label);
		super.addStringField(label, defaultText, columns);
	}

	@Override
	public void addNumericField(String label, double defaultValue, int digits) {
		key(label);
		super.addNumericField(label, defaultValue, digits);
	}

	@Override
	public void addFileField(String label, String defaultPath, int columns) {
		key(label);
		super.addFileField(label, defaultPath, columns);
	}

	@Override
	public void addDirectoryField(String label, String defaultPath, int columns) {
		key(label);
		super.addDirectoryField(label, defaultPath, columns);
	}

	@Override
	public void showDialog() {
		String options = Macro.getOptions();
		if (options != null) {
			List<String> unknown = unknownKeys(options, keys);
			if (!unknown.isEmpty()) {
				refusal = "Unknown macro option" + (unknown.size() > 1 ? "s " : " ") + String.join(", ", unknown)
					+ " for " + getTitle() + ".\nValid options: " + String.join(" ", keys)
					+ "\n(a checkbox is on when its word is present, e.g. \"" + keys.iterator().next() + "\")";
				ij.IJ.error(getTitle(), refusal);
				return;
			}
		}
		super.showDialog();
	}

	/** True when the user cancelled or the macro options were refused (the message is shown). */
	@Override
	public boolean wasCanceled() {
		return refusal != null || super.wasCanceled();
	}

	/** The keys of a macro options string ({@code key=value}, {@code key=[a b]}, bare {@code key}) not in {@code valid}. */
	static List<String> unknownKeys(String options, Set<String> valid) {
		List<String> unknown = new ArrayList<String>();
		int i = 0, n = options.length();
		while (i < n) {
			while (i < n && options.charAt(i) == ' ') i++;
			if (i >= n) break;
			int start = i;
			while (i < n && options.charAt(i) != ' ' && options.charAt(i) != '=') i++;
			String key = options.substring(start, i).toLowerCase(Locale.US);
			if (i < n && options.charAt(i) == '=') {
				i++;
				if (i < n && options.charAt(i) == '[') {
					int close = options.indexOf(']', i);
					i = close < 0 ? n : close + 1;
				}
				else {
					while (i < n && options.charAt(i) != ' ') i++;
				}
			}
			if (!key.isEmpty() && !valid.contains(key) && !unknown.contains(key)) unknown.add(key);
		}
		return unknown;
	}
}
