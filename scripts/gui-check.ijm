// GUI check (run by scripts/gui-check.sh under Xvfb): the plugin's menu command exists,
// a macro runs it on the demo image, the result window appears; a screenshot is saved.
// Argument: "demoImage|transform|outDir"
args = split(getArgument(), "|");
outDir = args[2];
List.setCommands;
command = List.get("Apply Transform...");
open(args[0]);
setLocation(10, 130);
run("Apply Transform...", "transform=[" + args[1] + "] width=0 height=0");
title = getTitle();
setLocation(540, 130);
wait(1500);
run("Capture Screen");
saveAs("PNG", outDir + "/apply-transform.png");
close();
report = "command=" + command + "\nresult=" + title + "\nimages=" + nImages + "\n";
File.saveString(report, outDir + "/gui-check.txt");
close("*");
run("Quit");
