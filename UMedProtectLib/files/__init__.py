"""Files in and out: images, labels and DICOM read and written on their grid, every output through one write
transaction, the report JSON, the PNG preview and the embedded sample study."""
